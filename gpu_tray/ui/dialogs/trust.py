"""The host-key dialog: trust an unknown key after checking its fingerprint, or be told
plainly that a known key has changed (with no way to accept it here).

It shows the key the snapshot carried (`HostSnapshot.host_key`) and "Trust"
records exactly that key, not one fetched again. Writing known_hosts happens
off the GUI thread; `trusted(host_name)` is emitted once it is on disk, for the
poller to reconnect that host.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.models import HostKeyInfo
from gpu_tray.ui.tasks import run_in_background

TrustFn = Callable[[HostKeyInfo], object]


def _default_trust(info: HostKeyInfo) -> object:
    from gpu_tray.sources.ssh.host_keys import trust

    return trust(info)


def remove_command(info: HostKeyInfo) -> str:
    return f"ssh-keygen -R '{info.host_id}' -f {info.known_file}"


def is_changed(info: HostKeyInfo) -> bool:
    return info.known_fingerprint is not None


class TrustDialog(QDialog):
    """`TrustDialog(name, snapshot.host_key)`: for host_key_unknown and host_key_changed."""

    trusted = Signal(str)  # the host name, after the key was written

    def __init__(
        self,
        host_name: str,
        info: HostKeyInfo,
        *,
        trust: TrustFn = _default_trust,
        on_trusted: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.host_name = host_name
        self.info = info
        self._trust = trust
        if on_trusted is not None:
            self.trusted.connect(on_trusted)
        self.setObjectName("TrustDialog")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        if is_changed(info):
            self._build_changed(layout)
        else:
            self._build_unknown(layout)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    # -- the two faces -------------------------------------------------------------------------

    def _header(
        self, layout: QVBoxLayout, icon: QStyle.StandardPixmap, title: str, text: str
    ) -> None:
        row = QHBoxLayout()
        pic = QLabel()
        pic.setPixmap(self.style().standardIcon(icon).pixmap(48, 48))
        pic.setAlignment(Qt.AlignmentFlag.AlignTop)
        row.addWidget(pic)
        words = QVBoxLayout()
        head = QLabel(title)
        font = head.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        head.setFont(font)
        head.setWordWrap(True)
        body = QLabel(text)
        body.setWordWrap(True)
        body.setTextFormat(Qt.TextFormat.PlainText)
        words.addWidget(head)
        words.addWidget(body)
        row.addLayout(words, 1)
        layout.addLayout(row)

    def _build_unknown(self, layout: QVBoxLayout) -> None:
        i = self.info
        self.setWindowTitle(f"Trust the host key of {self.host_name}?")
        self._header(
            layout,
            QStyle.StandardPixmap.SP_MessageBoxQuestion,
            f"gpu-tray has not seen the host key of {self.host_name} before",
            "It cannot tell whether this is really your server. Compare the fingerprint "
            "below with the one your administrator gives you, or with what the command "
            "below prints on the server. Trust it only if they match.",
        )
        form = QFormLayout()
        form.addRow("Host:", _value(i.host_id))
        form.addRow("Key type:", _value(i.key_type))
        self.fingerprint = _value(i.fingerprint, mono=True)
        self.fingerprint.setObjectName("fingerprint")
        form.addRow("Fingerprint:", self.fingerprint)
        check = f"ssh-keygen -lf /etc/ssh/ssh_host_{_short_type(i.key_type)}_key.pub"
        form.addRow("On the server:", _value(check, mono=True))
        layout.addLayout(form)
        self.buttons = QDialogButtonBox()
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.trust_button = QPushButton("Trust")
        self.trust_button.setObjectName("trust")
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        # The safe choice is the default: Enter must not trust a key nobody compared.
        self.cancel_button.setDefault(True)
        self.cancel_button.setAutoDefault(True)
        self.trust_button.setAutoDefault(False)
        self.buttons.rejected.connect(self.reject)
        self.trust_button.clicked.connect(self._on_trust)

    def _build_changed(self, layout: QVBoxLayout) -> None:
        i = self.info
        revoked = i.known_fingerprint == i.fingerprint
        self.setWindowTitle(f"Host key changed: {self.host_name}")
        self.setMinimumWidth(680)
        if revoked:
            title = f"The host key of {self.host_name} is revoked"
            text = (
                f"{i.known_file} marks this key @revoked (line {i.known_line}). gpu-tray will "
                "not connect to this host with it."
            )
        else:
            title = f"The host key of {self.host_name} has CHANGED. gpu-tray will not connect."
            text = (
                "Someone could be intercepting the connection, or the server was reinstalled. "
                "Ask its administrator for the new fingerprint. If it matches the one below, "
                "remove the old key from the file shown (for example with the command below); "
                "gpu-tray will then ask you to trust the new key."
            )
        self._header(layout, QStyle.StandardPixmap.SP_MessageBoxCritical, title, text)
        form = QFormLayout()
        form.addRow("Host:", _value(i.host_id))
        self.known_fingerprint = _value(i.known_fingerprint or "", mono=True)
        self.known_fingerprint.setObjectName("known_fingerprint")
        self.fingerprint = _value(i.fingerprint, mono=True)
        self.fingerprint.setObjectName("fingerprint")
        form.addRow("Trusted key:", self.known_fingerprint)
        form.addRow(f"Offered now ({i.key_type}):", self.fingerprint)
        self.location = _value(f"{i.known_file}, line {i.known_line}")
        self.location.setObjectName("location")
        form.addRow("Old key is in:", self.location)
        if not revoked:
            self.command = _value(remove_command(i), mono=True)
            self.command.setObjectName("command")
            form.addRow("To remove it:", self.command)
        layout.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.trust_button = None

    # -- trusting ------------------------------------------------------------------------------

    def _on_trust(self) -> None:
        assert self.trust_button is not None
        self.trust_button.setEnabled(False)
        self.error.hide()
        info = self.info
        run_in_background(self, lambda: self._trust(info), self._saved, self._failed, "trust")

    def _saved(self, _: object) -> None:
        self.trusted.emit(self.host_name)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        assert self.trust_button is not None
        self.error.setText(f"Could not save the key: {exc}")
        self.error.show()
        self.trust_button.setEnabled(True)


def _value(text: str, mono: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(not mono)  # a fingerprint or a command must not break mid-word
    if mono:
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        label.setFont(font)
    return label


def _short_type(key_type: str) -> str:
    """ssh-ed25519 -> ed25519, ecdsa-sha2-nistp256 -> ecdsa, ssh-rsa -> rsa."""
    if key_type.startswith("ecdsa"):
        return "ecdsa"
    return key_type.removeprefix("ssh-")
