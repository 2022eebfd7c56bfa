"""Ask the user, once, for a password or passphrase the SSH source needed.

The SSH source tells the store (`SecretStore.mark_missing` / `mark_rejected`)
on its worker thread; `SecretPrompter` carries that to the GUI thread and
opens one small dialog per account (never two for the same one). What the
user types goes to the keyring in a background task, and `answered(name)`
asks the tray to reconnect that host. Cancel leaves the host in
`auth_failed`: nothing is retried behind the user's back.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.credentials.keyring_store import SaveResult, SecretRequest, SecretStore
from gpu_tray.ui.settings.host_editor import ERROR_STYLE
from gpu_tray.ui.tasks import run_in_background


def prompt_texts(request: SecretRequest, persistent: bool = True) -> tuple[str, str]:
    """(window title, explanation) for a request; `persistent`: the keyring works."""
    host = request.host_name or request.host or "a host"
    noun = "Password" if request.kind == "password" else "Key passphrase"
    if request.rejected:
        title = f"{noun} refused: {host}"
        why = f"The server refused {request.what}. Type the right one."
    elif request.kind == "password":
        title = f"{noun} needed: {host}"
        why = f"{host} asks for {request.what}."
    else:
        title = f"{noun} needed: {host}"
        why = f"Logging in to {host} needs {request.what}."
    if persistent:
        why += " It is saved in the system keyring, never in a file."
    return title, why


class SecretPromptDialog(QDialog):
    answered = Signal(str)  # the [[hosts]] name, once the secret is stored

    def __init__(
        self, request: SecretRequest, store: SecretStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("SecretPromptDialog")
        self.request = request
        self.store = store
        status = store.last_status
        title, text = prompt_texts(request, persistent=status.message is None)
        self.setWindowTitle(title)
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        head = QLabel(title)
        font = head.font()
        font.setBold(True)
        head.setFont(font)
        layout.addWidget(head)
        self.text = QLabel(text)
        self.text.setObjectName("prompt_text")
        self.text.setWordWrap(True)
        layout.addWidget(self.text)
        form = QFormLayout()
        self.secret = QLineEdit()
        self.secret.setObjectName("secret")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Password:" if request.kind == "password" else "Passphrase:", self.secret)
        layout.addLayout(form)
        self.note = QLabel()
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #8a5a00;")
        if status.message:
            self.note.setText(status.message)
        else:
            self.note.hide()
        layout.addWidget(self.note)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Save and connect")
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _save(self) -> None:
        secret = self.secret.text()
        if not secret:
            self._fail(f"Type {self.request.what} first.")
            return
        self.secret.clear()
        self.ok.setEnabled(False)
        request, store = self.request, self.store
        run_in_background(
            self, lambda: store.set_secret(request, secret), self._saved, self._failed, "prompt"
        )

    def _saved(self, result: SaveResult) -> None:
        if self.request.host_name:
            self.answered.emit(self.request.host_name)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.ok.setEnabled(True)
        self._fail(str(exc) or type(exc).__name__)

    def _fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()


class SecretPrompter(QObject):
    """Listens to the store; shows a `SecretPromptDialog` per account that needs one."""

    answered = Signal(str)  # a [[hosts]] name to reconnect: wire to poller.reset
    _requested = Signal(object)

    def __init__(
        self,
        store: SecretStore,
        parent_widget: QWidget | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.parent_widget = parent_widget
        self.dialogs: dict[str, SecretPromptDialog] = {}
        self._requested.connect(self._show)
        self._unsubscribe = store.on_request(self._requested.emit)  # worker thread -> queued
        self.destroyed.connect(lambda *_: self._unsubscribe())

    def close(self) -> None:
        self._unsubscribe()
        for dialog in list(self.dialogs.values()):
            dialog.reject()

    def _show(self, request: SecretRequest) -> None:
        if request.account in self.dialogs:
            return  # already asking for it
        dialog = SecretPromptDialog(request, self.store, self.parent_widget)
        self.dialogs[request.account] = dialog
        dialog.answered.connect(self.answered)
        dialog.finished.connect(lambda _: self.dialogs.pop(request.account, None))
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
