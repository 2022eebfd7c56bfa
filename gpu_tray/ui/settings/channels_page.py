"""The settings dialog's Channels page: add, test and remove channels (Apprise URLs).

A channel's URL is a secret: its field is a password field, it goes straight to
the keyring (account `channel:NAME`) and the page keeps no copy once it is saved.
config.toml gets `[[channels]] name = "NAME"` only. The keyring, the network (a
test message) and the write of config.toml run in background tasks; each button
waits for its answer before it can be pressed again.

Adding or removing a channel writes config.toml at once (like `gpu-tray channel`),
not on the dialog's Save: the URL is already in the keyring by then, and a
channel in the keyring that no config names would only confuse. `changed(Config)`
says so, for the tray to reload (removing a channel can drop a rule).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.channels.store import ChannelStore
from gpu_tray.core.config import check_channel_name
from gpu_tray.core.settings import Config
from gpu_tray.ui.settings.host_editor import ERROR_STYLE
from gpu_tray.ui.settings.widgets import button, result_label
from gpu_tray.ui.tasks import run_in_background

OK_STYLE = "color: #1b5e20;"
#: (ok, the config when it was written, a line for the user)
_Answer = tuple[bool, Config | None, str]
NO_URL = "no URL in the keyring"
HAS_URL = "URL in the keyring"

HELP = (
    "Rules can tell more than this desktop: Slack, Discord, Teams, Telegram, ntfy "
    "(phone push), Matrix, email or a JSON webhook, through an "
    '<a href="https://github.com/caronc/apprise/wiki">Apprise URL</a> such as '
    "<tt>ntfy://ntfy.sh/my-lab-gpus</tt> or <tt>slack://TokenA/TokenB/TokenC</tt>. "
    "The URL is kept in the system keyring, never in config.toml. "
    'Pick channels per rule with <tt>channels = ["desktop", "NAME"]</tt> in [[watch]].'
)


class ChannelsPage(QWidget):
    changed = Signal(object)  # the Config just written

    def __init__(
        self, config: Config, config_path: Path, store: ChannelStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ChannelsPage")
        self.config_path = config_path
        self.store = store
        self._names = [c.name for c in config.channels]
        self._has_url: dict[str, bool | None] = {n: None for n in self._names}

        layout = QVBoxLayout(self)
        intro = QLabel(HELP)
        intro.setObjectName("channels_help")
        intro.setWordWrap(True)
        intro.setOpenExternalLinks(True)
        layout.addWidget(intro)

        self.list = QListWidget()
        self.list.setObjectName("channel_list")
        self.list.currentRowChanged.connect(self._selected)
        layout.addWidget(self.list, 1)

        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setObjectName("channel_name")
        self.name.setPlaceholderText("lab-slack")
        form.addRow("Name:", self.name)
        self.url = QLineEdit()
        self.url.setObjectName("channel_url")
        self.url.setEchoMode(QLineEdit.EchoMode.Password)
        self.url.setPlaceholderText("ntfy://ntfy.sh/my-lab-gpus (kept in the system keyring)")
        self.url.returnPressed.connect(self.add)
        form.addRow("Apprise URL:", self.url)
        layout.addLayout(form)

        row = QHBoxLayout()
        self.add_button = button("add_channel", "Add / replace URL", self.add)
        self.test_button = button("test_channel", "Send a test message", self.test)
        self.remove_button = button("remove_channel", "Remove", self.remove)
        for b in (self.add_button, self.test_button, self.remove_button):
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        self.status = result_label("channel_status")
        layout.addWidget(self.status)

        self._refill()
        self._look_up_urls()

    # -- the list --------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._names)

    def _refill(self, select: str | None = None) -> None:
        current = select or self._current()
        self.list.blockSignals(True)
        self.list.clear()
        for name in self._names:
            state = self._has_url.get(name)
            suffix = "" if state is None else f"  ({HAS_URL if state else NO_URL})"
            self.list.addItem(QListWidgetItem(name + suffix))
        self.list.blockSignals(False)
        if current in self._names:
            self.list.setCurrentRow(self._names.index(current))
        self._update_buttons()

    def _current(self) -> str | None:
        row = self.list.currentRow()
        return self._names[row] if 0 <= row < len(self._names) else None

    def _selected(self, _row: int) -> None:
        name = self._current()
        if name is not None:
            self.name.setText(name)
        self.url.clear()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self._current() is not None)

    def _look_up_urls(self) -> None:
        names, store = list(self._names), self.store

        def look() -> dict[str, bool]:
            return {n: store.has_url(n) for n in names}

        def done(found: dict[str, bool]) -> None:
            self._has_url.update(found)
            self._refill()

        run_in_background(self, look, done, self._failed, "channels:look-up")

    # -- actions ---------------------------------------------------------------------------

    def add(self) -> None:
        name = self.name.text().strip()
        url = self.url.text().strip()
        if problem := check_channel_name(name):
            self._say(problem[:1].upper() + problem[1:], ok=False)
            return
        if not url:
            self._say(f"Paste the Apprise URL for {name} first.", ok=False)
            return
        self.url.clear()  # the page keeps no copy
        path, store = self.config_path, self.store

        def work() -> _Answer:
            from gpu_tray.channels.deliver import check_url
            from gpu_tray.core.config_edit import add_channel, edit_config

            if problem := check_url(url):
                return False, None, f"{problem[:1].upper()}{problem[1:]}. Nothing was saved."
            result = store.save(name, url)
            if not result.in_keyring:
                return False, None, f"{result.message}. Nothing was saved."
            config = edit_config(path, lambda doc: add_channel(doc, name))
            return True, config, f"Saved the URL of {name} in the system keyring."

        self._run(work, "channels:add", name)

    def test(self) -> None:
        name = self.name.text().strip() or self._current() or ""
        typed = self.url.text().strip()
        if not typed and name not in self._names:
            self._say("Pick a channel, or paste a URL to try.", ok=False)
            return
        store = self.store

        def work() -> _Answer:
            from gpu_tray.channels.deliver import deliver
            from gpu_tray.channels.message import TEST_MESSAGE

            url = typed or store.url(name)
            if url is None:
                return False, None, f"{name} has no URL in the system keyring: add one first."
            result = deliver(url, TEST_MESSAGE)
            who = name or "the URL"
            if result.ok:
                return True, None, f"Delivered a test message to {who}."
            return False, None, f"Not delivered to {who}: {result.reason}"

        self._say("Sending a test message…", ok=None)
        self._run(work, "channels:test", None)

    def remove(self) -> None:
        name = self._current()
        if name is None:
            return
        path, store = self.config_path, self.store

        def work() -> _Answer:
            from gpu_tray.core.config_edit import edit_config, remove_channel

            dropped: list[int] = []
            config = edit_config(path, lambda doc: dropped.append(remove_channel(doc, name)[1]))
            store.forget(name)
            text = f"Removed {name} and forgot its URL."
            if dropped and dropped[0]:
                n = dropped[0]
                text += f" {n} watch rule{'s' if n > 1 else ''} that sent only to it went too."
            return True, config, text

        self._run(work, "channels:remove", None)

    # -- background plumbing ---------------------------------------------------------------

    def _run(self, work: Callable[[], _Answer], task: str, select: str | None) -> None:
        self._busy(True)

        def done(answer: _Answer) -> None:
            self._busy(False)
            ok, config, text = answer
            self._say(text, ok=ok)
            if config is not None:
                self._names = [c.name for c in config.channels]
                if select is not None:
                    self._has_url[select] = True
                self._refill(select)
                self.changed.emit(config)

        def failed(exc: BaseException) -> None:
            self._busy(False)
            self._failed(exc)

        run_in_background(self, work, done, failed, task)

    def _busy(self, busy: bool) -> None:
        for b in (self.add_button, self.test_button):
            b.setEnabled(not busy)
        self.remove_button.setEnabled(not busy and self._current() is not None)

    def _failed(self, exc: BaseException) -> None:
        self._say(str(exc) or type(exc).__name__, ok=False)

    def _say(self, text: str, ok: bool | None) -> None:
        self.status.setStyleSheet("" if ok is None else OK_STYLE if ok else ERROR_STYLE)
        self.status.setText(text)
