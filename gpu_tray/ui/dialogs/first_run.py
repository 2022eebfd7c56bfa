"""The welcome dialog shown when there is no config.toml: import hosts from
~/.ssh/config, add one by hand, or try the demo cluster.

It never touches the network: ~/.ssh/config is read in a background task,
and hosts are only written to config.toml. Passwords and host keys are asked
for when the tray first connects.

Wiring (by the tray app): `hostsAdded(Config)` -> start polling that config;
`demoChosen()` -> run the demo cluster; rejected -> the app decides (the demo
is a good default: nothing was written).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.host_form import HostForm, check_form
from gpu_tray.core.settings import Config, HostConfig
from gpu_tray.ui.settings.host_editor import FIELD_LABELS, error_label
from gpu_tray.ui.settings.ssh_import import SshHostChecklist
from gpu_tray.ui.tasks import run_in_background


class FirstRunDialog(QDialog):
    hostsAdded = Signal(object)  # the Config written to config_path
    demoChosen = Signal()

    def __init__(
        self,
        config_path: Path,
        *,
        ssh_config_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FirstRunDialog")
        self.config_path = config_path
        self.setWindowTitle("Welcome to gpu-tray")
        self.setMinimumSize(620, 560)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        title = QLabel("Welcome to gpu-tray")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.5)
        title.setFont(font)
        layout.addWidget(title)
        intro = QLabel(
            "gpu-tray shows how many GPUs are free on your servers and tells you the moment "
            "one frees up. Which servers should it watch? A server that works with "
            "`ssh NAME` works here."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        ssh_box = QGroupBox("Import from ~/.ssh/config")
        v = QVBoxLayout(ssh_box)
        self.checklist = SshHostChecklist(ssh_config_path, parent=self)
        self.checklist.changed.connect(self._update)
        self.checklist.loaded.connect(self._update)
        v.addWidget(self.checklist)
        layout.addWidget(ssh_box, 1)

        hand = QGroupBox("Or add a server by hand")
        form = QFormLayout(hand)
        self._errors: dict[str, QLabel] = {}
        self.name = self._field(form, "name", "Name:", "a hostname, or an alias from ~/.ssh/config")
        self.user = self._field(form, "user", "User:", "optional: your login name by default")
        self.port = self._field(form, "port", "Port:", "optional: 22 by default")
        layout.addWidget(hand)

        note = QLabel(
            "Passwords go to the system keyring, and you confirm each server's host key "
            "the first time gpu-tray connects."
        )
        note.setWordWrap(True)
        note.setEnabled(False)
        layout.addWidget(note)
        self.save_error = error_label("save")
        layout.addWidget(self.save_error)

        self.buttons = QDialogButtonBox()
        self.demo_button = QPushButton("Try the demo cluster")
        self.demo_button.setObjectName("demo")
        self.demo_button.setAutoDefault(False)
        self.buttons.addButton(self.demo_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.add_button = QPushButton("Add servers")
        self.add_button.setObjectName("add_servers")
        self.add_button.setDefault(True)
        self.buttons.addButton(self.add_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        self.demo_button.clicked.connect(self._demo)
        self.add_button.clicked.connect(self.add_servers)
        layout.addWidget(self.buttons)
        self._update()

    def _field(self, form: QFormLayout, name: str, label: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        edit.textEdited.connect(self._edited)
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        v.addWidget(edit)
        self._errors[name] = error_label(name)
        v.addWidget(self._errors[name])
        form.addRow(label, box)
        return edit

    # -- state ---------------------------------------------------------------------------------

    def _manual_form(self) -> HostForm:
        return HostForm(name=self.name.text(), user=self.user.text(), port=self.port.text())

    def _manual_host(self, show: bool) -> tuple[HostConfig | None, bool]:
        """(host, ok): (None, True) when nothing was typed."""
        form = self._manual_form()
        if not (form.name.strip() or form.user.strip() or form.port.strip()):
            self._show_problems({})
            return None, True
        host, problems = check_form(form, self.checklist.chosen())
        if show:
            self._show_problems(problems)
        return host, host is not None

    def _show_problems(self, problems: dict[str, str]) -> None:
        for name, label in self._errors.items():
            if problem := problems.get(name):
                label.setText(problem if name == "name" else f"{FIELD_LABELS[name]} {problem}")
                label.show()
            else:
                label.hide()

    def _edited(self) -> None:
        self._manual_host(show=True)
        self._update()

    def _update(self) -> None:
        typed = bool(self.name.text().strip())
        self.add_button.setEnabled(bool(self.checklist.chosen()) or typed)

    # -- actions -------------------------------------------------------------------------------

    def _demo(self) -> None:
        self.demoChosen.emit()
        self.accept()

    def add_servers(self) -> None:
        manual, ok = self._manual_host(show=True)
        if not ok:
            return
        hosts = [HostConfig(name=n) for n in self.checklist.chosen()]
        if manual is not None:
            hosts.append(manual)
        if not hosts:
            return
        self.add_button.setEnabled(False)
        self.save_error.hide()
        path = self.config_path

        def write() -> Config:
            from gpu_tray.core.config import ConfigError, load_config
            from gpu_tray.core.config_edit import add_host, edit_config

            try:
                present = {h.name for h in load_config(path).hosts} if path.exists() else set()
            except ConfigError:
                present = set()  # edit_config reports the problem with file and line

            def change(doc) -> None:  # type: ignore[no-untyped-def]
                for h in hosts:
                    if h.name not in present:
                        add_host(doc, h)

            return edit_config(path, change)

        run_in_background(self, write, self._written, self._failed, "first-run")

    def _written(self, config: Config) -> None:
        self.hostsAdded.emit(config)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_error.setText(f"{exc}\nNothing was saved.")
        self.save_error.show()
        self._update()
