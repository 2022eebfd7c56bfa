"""The Settings dialog: hosts (add, edit, remove, reorder, import from ~/.ssh/config),
their passwords, a connection test, polling and notification options.

Nothing here blocks the GUI thread: the keyring, the SSH test and the write
of config.toml run in background tasks and answer through queued signals.
"Save" checks every field first (an inline message under each wrong one) and
writes nothing until all are right; `config_edit` then validates the whole
file again and writes it atomically, keeping the user's comments.

Wiring (by the tray app): `saved(Config)` -> rebuild the poller from the new
config; `reconnectRequested(name)` -> `poller.reset(name)` (a password was
saved or a key trusted for a host the poller may be waiting on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.host_form import HostForm, check_form, form_of
from gpu_tray.core.models import HostKeyInfo, HostSnapshot, HostState
from gpu_tray.core.settings import Config, FreeThresholds, HostConfig
from gpu_tray.credentials.keyring_store import (
    KeyringState,
    KeyringStatus,
    SaveResult,
    SecretRequest,
    SecretStore,
)
from gpu_tray.sources.base import Probe, SecretLookup
from gpu_tray.ui.dialogs.trust import TrustDialog, TrustFn, _default_trust
from gpu_tray.ui.settings.apply import General, HostRow, apply_changes
from gpu_tray.ui.settings.host_editor import ERROR_STYLE, HostEditor
from gpu_tray.ui.settings.ssh_import import ImportDialog
from gpu_tray.ui.settings.widgets import button, result_label
from gpu_tray.ui.tasks import run_in_background

ProbeFactory = Callable[[HostConfig, SecretLookup], Probe]
OK_STYLE = "color: #1b5e20;"


def _default_probe(host: HostConfig, secrets: SecretLookup) -> Probe:
    from gpu_tray.sources.ssh.probe import SshProbe

    return SshProbe(host, secrets)


@dataclass
class _Row:
    origin: str | None  # the name in config.toml; None for a host added in this dialog
    form: HostForm


class SettingsDialog(QDialog):
    saved = Signal(object)  # the Config just written
    #: config.toml changed on the Channels page (written at once, before any Save).
    channelsChanged = Signal(object)
    reconnectRequested = Signal(str)  # a [[hosts]] name whose credentials or trust changed
    _keyringStatus = Signal(object)  # from the store's thread to ours

    def __init__(
        self,
        config: Config,
        config_path: Path,
        store: SecretStore,
        *,
        start_at_login: bool | None = None,
        set_start_at_login: Callable[[bool], object] | None = None,
        trust: TrustFn = _default_trust,
        probe_factory: ProbeFactory = _default_probe,
        ssh_config_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("SettingsDialog")
        self.setWindowTitle("gpu-tray settings")
        self.resize(860, 640)
        self.before = config
        self.config_path = config_path
        self.store = store
        self._start_at_login = start_at_login
        self._set_start_at_login = set_start_at_login
        self._trust = trust
        self._probe_factory = probe_factory
        self._ssh_config_path = ssh_config_path
        self._rows = [_Row(h.name, form_of(h)) for h in config.hosts]
        self._current: _Row | None = None
        self._last_key: HostKeyInfo | None = None
        self._last_key_host = ""

        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._hosts_tab(), "Hosts")
        self.tabs.addTab(self._general_tab(), "Polling && notifications")
        from gpu_tray.channels.store import ChannelStore
        from gpu_tray.ui.settings.channels_page import ChannelsPage

        self.channels_page = ChannelsPage(config, config_path, ChannelStore(store))
        self.channels_page.changed.connect(self.channelsChanged.emit)
        self.tabs.addTab(self.channels_page, "Channels")
        layout.addWidget(self.tabs, 1)
        self.keyring_banner = QLabel()
        self.keyring_banner.setObjectName("keyring_banner")
        self.keyring_banner.setWordWrap(True)
        self.keyring_banner.setStyleSheet("color: #8a5a00;")
        self.keyring_banner.hide()
        layout.addWidget(self.keyring_banner)
        self.save_error = QLabel()
        self.save_error.setObjectName("save_error")
        self.save_error.setWordWrap(True)
        self.save_error.setStyleSheet(ERROR_STYLE)
        self.save_error.hide()
        layout.addWidget(self.save_error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._keyringStatus.connect(self._show_keyring_status)
        self._unsubscribe = store.on_status(self._keyringStatus.emit)
        self.finished.connect(lambda _: self._unsubscribe())
        self._show_keyring_status(store.last_status)
        if store.last_status.state is KeyringState.UNKNOWN:
            store.start_probe()

        for row in self._rows:
            self.host_list.addItem(QListWidgetItem(row.form.name))
        if self._rows:
            self.host_list.setCurrentRow(0)
        self._update_pages()

    # -- building ------------------------------------------------------------------------------

    def _hosts_tab(self) -> QWidget:
        tab = QWidget()
        outer = QHBoxLayout(tab)
        left = QVBoxLayout()
        self.host_list = QListWidget()
        self.host_list.setObjectName("host_list")
        self.host_list.currentRowChanged.connect(self._select)
        left.addWidget(self.host_list, 1)
        row = QHBoxLayout()
        self.add_button = button("add_host", "Add", self.add_host)
        self.remove_button = button("remove_host", "Remove", self.remove_host)
        self.up_button = button("move_up", "Up", lambda: self.move_host(-1))
        self.down_button = button("move_down", "Down", lambda: self.move_host(+1))
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            row.addWidget(b)
        left.addLayout(row)
        self.import_button = button(
            "import_ssh", "Import from ~/.ssh/config…", self.import_hosts
        )
        left.addWidget(self.import_button)
        outer.addLayout(left, 2)

        self.pages = QStackedWidget()
        empty = QLabel(
            "No hosts yet.\n\nAdd one, or import them from ~/.ssh/config: "
            "a host that works with `ssh NAME` works here."
        )
        empty.setObjectName("no_hosts")
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages.addWidget(empty)
        page = QWidget()
        right = QVBoxLayout(page)
        right.setContentsMargins(0, 0, 0, 0)
        self.editor = HostEditor()
        self.editor.changed.connect(self._edited)
        right.addWidget(self.editor)
        right.addWidget(self._secret_box())
        right.addWidget(self._test_box())
        right.addStretch(1)
        self.pages.addWidget(page)
        outer.addWidget(self.pages, 5)
        return tab

    def _secret_box(self) -> QGroupBox:
        box = QGroupBox("Password")
        box.setObjectName("secret_box")
        self.secret_box = box
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.secret = QLineEdit()
        self.secret.setObjectName("secret")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.returnPressed.connect(self.save_secret)
        self.save_secret_button = button("save_secret", "Save in keyring", self.save_secret)
        self.forget_secret_button = button(
            "forget_secret", "Forget password", self.forget_secret
        )
        row.addWidget(self.secret, 1)
        row.addWidget(self.save_secret_button)
        row.addWidget(self.forget_secret_button)
        v.addLayout(row)
        self.secret_status = QLabel()
        self.secret_status.setObjectName("secret_status")
        self.secret_status.setWordWrap(True)
        v.addWidget(self.secret_status)
        return box

    def _test_box(self) -> QGroupBox:
        box = QGroupBox("Connection")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.test_button = button("test_connection", "Test connection", self.test_connection)
        self.review_key_button = button("review_key", "Review host key…", self.review_key)
        self.review_key_button.hide()
        row.addWidget(self.test_button)
        row.addWidget(self.review_key_button)
        row.addStretch(1)
        v.addLayout(row)
        self.test_result = result_label("test_result")
        v.addWidget(self.test_result)
        return box

    def _general_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        c = self.before
        self.poll_interval = QDoubleSpinBox()
        self.poll_interval.setObjectName("poll_interval")
        self.poll_interval.setRange(1, 3600)
        self.poll_interval.setDecimals(0 if float(c.poll_interval_s).is_integer() else 1)
        self.poll_interval.setSuffix(" s")
        self.poll_interval.setValue(c.poll_interval_s)
        form.addRow("Poll every:", self.poll_interval)
        self.max_memory = QSpinBox()
        self.max_memory.setObjectName("max_memory_mib")
        self.max_memory.setRange(0, 10_000_000)
        self.max_memory.setPrefix("at most ")
        self.max_memory.setSuffix(" MiB used")
        self.max_memory.setValue(c.free.max_memory_mib)
        self.max_utilization = QSpinBox()
        self.max_utilization.setObjectName("max_utilization_pct")
        self.max_utilization.setRange(0, 100)
        self.max_utilization.setPrefix("at most ")
        self.max_utilization.setSuffix(" % busy")
        self.max_utilization.setValue(c.free.max_utilization_pct)
        free = QHBoxLayout()
        free.addWidget(self.max_memory)
        free.addWidget(self.max_utilization)
        free.addStretch(1)
        form.addRow("A GPU is free when:", free)
        hint = QLabel("…and no process runs on it. Hosts can have their own thresholds.")
        hint.setEnabled(False)
        form.addRow("", hint)
        self.confirm_polls = QSpinBox()
        self.confirm_polls.setObjectName("confirm_polls")
        self.confirm_polls.setRange(1, 1000)
        self.confirm_polls.setSuffix(" polls in a row")
        self.confirm_polls.setValue(c.notify.confirm_polls)
        form.addRow("Notify once a watch holds for:", self.confirm_polls)
        self.sound = QCheckBox("Play a sound with notifications")
        self.sound.setObjectName("sound")
        self.sound.setChecked(c.notify.sound)
        form.addRow("", self.sound)
        self.start_at_login = QCheckBox("Start gpu-tray when I log in")
        self.start_at_login.setObjectName("start_at_login")
        if self._start_at_login is None or self._set_start_at_login is None:
            self.start_at_login.setEnabled(False)
            self.start_at_login.setToolTip("Not available on this system")
        else:
            self.start_at_login.setChecked(self._start_at_login)
        form.addRow("", self.start_at_login)
        return tab

    # -- the host list -------------------------------------------------------------------------

    def _commit_editor(self) -> None:
        if self._current is not None:
            self._current.form = self.editor.form()

    def _select(self, index: int) -> None:
        self._commit_editor()
        self._current = self._rows[index] if 0 <= index < len(self._rows) else None
        self.test_result.clear()
        self.review_key_button.hide()
        self.secret.clear()
        self.secret_status.clear()
        if self._current is not None:
            self.editor.set_form(self._current.form)
            self._check_current()
        self._update_pages()

    def _update_pages(self) -> None:
        has = self._current is not None
        self.pages.setCurrentIndex(1 if has else 0)
        index = self.host_list.currentRow()
        self.remove_button.setEnabled(has)
        self.up_button.setEnabled(has and index > 0)
        self.down_button.setEnabled(has and index < len(self._rows) - 1)
        self._update_secret_labels()

    def _other_names(self, row: _Row) -> list[str]:
        return [r.form.name.strip() for r in self._rows if r is not row]

    def _check_current(self) -> HostConfig | None:
        if self._current is None:
            return None
        host, problems = check_form(self.editor.form(), self._other_names(self._current))
        self.editor.show_problems(problems)
        return host

    def _edited(self) -> None:
        if self._current is None:
            return
        self._commit_editor()
        item = self.host_list.currentItem()
        if item is not None:
            item.setText(self._current.form.name or "(new host)")
        self._check_current()
        self._update_secret_labels()
        self.save_error.hide()

    def add_host(self, form: HostForm | None = None) -> None:
        self._commit_editor()
        row = _Row(None, form or HostForm())
        self._rows.append(row)
        self.host_list.addItem(QListWidgetItem(row.form.name or "(new host)"))
        self.host_list.setCurrentRow(len(self._rows) - 1)
        if not row.form.name:
            self.tabs.setCurrentIndex(0)
            self.editor.name.setFocus()

    def remove_host(self) -> None:
        index = self.host_list.currentRow()
        if index < 0:
            return
        self._current = None  # nothing to commit: the row goes away
        del self._rows[index]
        self.host_list.blockSignals(True)
        self.host_list.takeItem(index)
        self.host_list.blockSignals(False)
        new = min(index, len(self._rows) - 1)
        self.host_list.setCurrentRow(new)
        self._select(new)

    def move_host(self, step: int) -> None:
        index = self.host_list.currentRow()
        new = index + step
        if index < 0 or not 0 <= new < len(self._rows):
            return
        self._commit_editor()
        self._rows.insert(new, self._rows.pop(index))
        self.host_list.blockSignals(True)
        item = self.host_list.takeItem(index)
        self.host_list.insertItem(new, item)
        self.host_list.setCurrentRow(new)
        self.host_list.blockSignals(False)
        self._update_pages()

    def import_hosts(self) -> None:
        self._commit_editor()
        dialog = ImportDialog(
            self._ssh_config_path, [r.form.name.strip() for r in self._rows], parent=self
        )
        dialog.setObjectName("ImportDialog")
        dialog.accepted.connect(lambda: self._imported(dialog.chosen()))
        dialog.open()
        self.import_dialog = dialog

    def _imported(self, names: list[str]) -> None:
        for name in names:
            self.add_host(HostForm(name=name))

    def host_names(self) -> list[str]:
        self._commit_editor()
        return [r.form.name for r in self._rows]

    # -- saving --------------------------------------------------------------------------------

    def general(self) -> General:
        return General(
            poll_interval_s=self.poll_interval.value(),
            free=FreeThresholds(self.max_memory.value(), self.max_utilization.value()),
            confirm_polls=self.confirm_polls.value(),
            sound=self.sound.isChecked(),
        )

    def save(self) -> None:
        self._commit_editor()
        rows: list[HostRow] = []
        for index, row in enumerate(self._rows):
            host, problems = check_form(row.form, self._other_names(row))
            if host is None:
                self.host_list.setCurrentRow(index)
                self.tabs.setCurrentIndex(0)
                self.editor.show_problems(problems)
                self._show_save_error(
                    f"Fix the marked fields of {row.form.name.strip() or 'the new host'} first: "
                    "nothing was saved."
                )
                return
            rows.append(HostRow(row.origin, host))
        general = self.general()
        login: bool | None = None
        if self.start_at_login.isEnabled() and (
            self.start_at_login.isChecked() != bool(self._start_at_login)
        ):
            login = self.start_at_login.isChecked()
        self._set_busy(True)
        self.save_error.hide()
        path, before, setter = self.config_path, self.before, self._set_start_at_login

        def write() -> Config:
            from gpu_tray.core.config_edit import edit_config

            config = edit_config(path, lambda doc: apply_changes(doc, before, rows, general))
            if login is not None and setter is not None:
                setter(login)
            return config

        run_in_background(self, write, self._saved, self._save_failed, "save-settings")

    def _saved(self, config: Config) -> None:
        self._set_busy(False)
        self.saved.emit(config)
        self.accept()

    def _save_failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        self._show_save_error(f"{exc}\nNothing was saved.")

    def _show_save_error(self, text: str) -> None:
        self.save_error.setText(text)
        self.save_error.show()

    def _set_busy(self, busy: bool) -> None:
        self.save_button.setEnabled(not busy)
        self.save_button.setText("Saving…" if busy else "Save")

    # -- passwords -----------------------------------------------------------------------------

    def _secret_kind(self) -> str:
        return "passphrase" if self.editor.auth.currentData() == "key" else "password"

    def _update_secret_labels(self) -> None:
        if self._secret_kind() == "passphrase":
            self.secret_box.setTitle("Key passphrase (for the identity file)")
            self.forget_secret_button.setText("Forget passphrase")
            self.secret.setPlaceholderText("kept in the system keyring")
        else:
            self.secret_box.setTitle("Password")
            self.forget_secret_button.setText("Forget password")
            self.secret.setPlaceholderText("kept in the system keyring")

    def _request_for(self, host: HostConfig, kind: str) -> SecretRequest:
        """Blocking (reads ~/.ssh/config): runs in a background task."""
        from gpu_tray.sources.ssh.target import resolve

        target = resolve(host)
        if kind == "passphrase":
            if not target.explicit_identities:
                raise ValueError("Set the identity file first: the passphrase belongs to a key")
            return SecretRequest.for_passphrase(target.identity_files[0], host.name)
        return SecretRequest.for_password(target.user, target.hostname, target.port, host.name)

    def _secret_host(self) -> HostConfig | None:
        host = self._check_current()
        if host is None:
            self._secret_message("Fix the host's fields above first.", error=True)
        return host

    def save_secret(self) -> None:
        host = self._secret_host()
        secret = self.secret.text()
        if host is None:
            return
        if not secret:
            self._secret_message(f"Type the {self._secret_kind()} first.", error=True)
            return
        self.secret.clear()  # the dialog keeps no copy
        kind, origin, store = self._secret_kind(), self._current_origin(), self.store

        def save() -> tuple[SecretRequest, SaveResult]:
            request = self._request_for(host, kind)
            return request, store.set_secret(request, secret)

        def done(answer: tuple[SecretRequest, SaveResult]) -> None:
            request, result = answer
            what = request.what[:1].upper() + request.what[1:]
            if result.in_keyring:
                self._secret_message(f"{what}: {result.message}")
            else:
                self._secret_message(f"{what} is kept for this session only. {result.message}")
            if origin is not None:
                self.reconnectRequested.emit(origin)

        self._secret_message("Saving…")
        run_in_background(self, save, done, self._secret_failed, "save-secret")

    def forget_secret(self) -> None:
        host = self._secret_host()
        if host is None:
            return
        kind, store = self._secret_kind(), self.store

        def forget() -> tuple[SecretRequest, bool]:
            request = self._request_for(host, kind)
            return request, store.forget(request)

        def done(answer: tuple[SecretRequest, bool]) -> None:
            request, removed = answer
            if removed:
                self._secret_message(f"Forgot {request.what}.")
            else:
                self._secret_message(
                    f"Nothing to forget: no {request.what.removeprefix('the ')} was stored."
                )

        run_in_background(self, forget, done, self._secret_failed, "forget-secret")

    def _secret_failed(self, exc: BaseException) -> None:
        self._secret_message(str(exc) or type(exc).__name__, error=True)

    def _secret_message(self, text: str, error: bool = False) -> None:
        self.secret_status.setStyleSheet(ERROR_STYLE if error else "")
        self.secret_status.setText(text)

    def _current_origin(self) -> str | None:
        return self._current.origin if self._current is not None else None

    # -- connection test -----------------------------------------------------------------------

    def test_connection(self) -> None:
        host = self._check_current()
        if host is None:
            self._test_message("Fix the host's fields above first.", ok=False)
            return
        row, factory, store = self._current, self._probe_factory, self.store
        self.test_button.setEnabled(False)
        self.review_key_button.hide()
        self._test_message(f"Connecting to {host.name}…", ok=None)

        def probe() -> HostSnapshot:
            p = factory(host, store)
            try:
                return p.poll()[0]
            finally:
                p.close()

        def done(snap: HostSnapshot) -> None:
            self.test_button.setEnabled(True)
            if row is not self._current:
                return  # the user moved on to another host
            self._show_test(host, snap)

        def failed(exc: BaseException) -> None:
            self.test_button.setEnabled(True)
            if row is self._current:
                self._test_message(f"{type(exc).__name__}: {exc}", ok=False)

        run_in_background(self, probe, done, failed, f"test:{host.name}")

    def _show_test(self, host: HostConfig, snap: HostSnapshot) -> None:
        if snap.state is HostState.OK:
            n = len(snap.gpus)
            latency = f" in {snap.latency_ms:.0f} ms" if snap.latency_ms is not None else ""
            self._test_message(
                f"ok: {host.name} answered{latency} with {n} GPU{'s' if n != 1 else ''}.", ok=True
            )
        else:
            self._test_message(f"{snap.state.value}: {snap.message}", ok=False)
        self._last_key = snap.host_key
        self._last_key_host = host.name
        self.review_key_button.setVisible(snap.host_key is not None)

    def _test_message(self, text: str, ok: bool | None) -> None:
        self.test_result.setStyleSheet("" if ok is None else OK_STYLE if ok else ERROR_STYLE)
        self.test_result.setText(text)

    def review_key(self) -> TrustDialog | None:
        if self._last_key is None:
            return None
        origin = self._current_origin()
        dialog = TrustDialog(self._last_key_host, self._last_key, trust=self._trust, parent=self)

        def trusted(_: str) -> None:
            if origin is not None:
                self.reconnectRequested.emit(origin)
            self.test_connection()

        dialog.trusted.connect(trusted)
        dialog.open()
        self.trust_dialog = dialog
        return dialog

    # -- keyring status ------------------------------------------------------------------------

    def _show_keyring_status(self, status: KeyringStatus) -> None:
        if status.message:
            self.keyring_banner.setText(status.message)
            self.keyring_banner.show()
        else:
            self.keyring_banner.hide()
