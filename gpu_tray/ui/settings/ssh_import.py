"""A checklist of the `Host` entries in ~/.ssh/config, read off the GUI thread.

Used by the first-run wizard and by "Import from ~/.ssh/config…" in the
settings. Hosts already configured are shown checked and greyed out.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.sources.ssh.config_hosts import (
    SshConfigError,
    SshHostEntry,
    default_ssh_config_path,
    importable_hosts,
)
from gpu_tray.ui.tasks import run_in_background


class SshHostChecklist(QWidget):
    loaded = Signal()  # the list is filled (or the reason it is empty is shown)
    changed = Signal()  # a box was (un)checked

    def __init__(
        self,
        ssh_config_path: Path | None = None,
        existing: Collection[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = ssh_config_path or default_ssh_config_path()
        self.existing = set(existing)
        self.entries: list[SshHostEntry] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel(f"Reading {_tilde(self.path)}…")
        self.status.setObjectName("import_status")
        self.status.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("import_list")
        self.list.itemChanged.connect(lambda _: self.changed.emit())
        layout.addWidget(self.status)
        layout.addWidget(self.list, 1)
        self.is_loaded = False
        path = self.path
        run_in_background(self, lambda: importable_hosts(path), self._fill, self._failed, "ssh-cfg")

    def _fill(self, entries: list[SshHostEntry]) -> None:
        self.entries = entries
        self.list.blockSignals(True)
        for e in entries:
            item = QListWidgetItem(f"{e.name}    {e.summary}" if e.summary != e.name else e.name)
            item.setData(Qt.ItemDataRole.UserRole, e.name)
            item.setToolTip(e.summary)
            if e.name in self.existing:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(Qt.CheckState.Checked)
                item.setText(item.text() + "    (already added)")
            else:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        if entries:
            self.status.setText(f"Hosts in {_tilde(self.path)}: tick the GPU servers to watch.")
        else:
            self.status.setText(f"No Host entries in {_tilde(self.path)}.")
            self.list.hide()
        self._done()

    def _failed(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, SshConfigError) else f"{type(exc).__name__}: {exc}"
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;")
        self.list.hide()
        self._done()

    def _done(self) -> None:
        self.is_loaded = True
        self.loaded.emit()

    def chosen(self) -> list[str]:
        """Names ticked by the user (not those already configured)."""
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            name = item.data(Qt.ItemDataRole.UserRole)
            if item.checkState() == Qt.CheckState.Checked and name not in self.existing:
                out.append(name)
        return out

    def set_checked(self, name: str, checked: bool = True) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)


class ImportDialog(QDialog):
    """ "Import from ~/.ssh/config": returns the ticked names in `chosen()` on accept."""

    def __init__(
        self,
        ssh_config_path: Path | None = None,
        existing: Collection[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import hosts from ~/.ssh/config")
        self.setMinimumSize(480, 360)
        layout = QVBoxLayout(self)
        self.checklist = SshHostChecklist(ssh_config_path, existing, self)
        layout.addWidget(self.checklist, 1)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Import")
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.checklist.changed.connect(lambda: self.ok.setEnabled(bool(self.chosen())))
        layout.addWidget(self.buttons)

    def chosen(self) -> list[str]:
        return self.checklist.chosen()


def _tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + "/") else text
