"""The host-key dialog (pytest-qt, offscreen): unknown keys can be trusted, changed keys
cannot, and Trust writes exactly the key that was shown."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QPushButton

from gpu_tray.core.models import HostKeyInfo
from gpu_tray.sources.ssh.host_keys import trust
from gpu_tray.ui.dialogs.trust import TrustDialog

UNKNOWN = HostKeyInfo(
    host_id="[127.0.0.2]:2222",
    key_type="ssh-ed25519",
    fingerprint="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    key_base64="AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
)
CHANGED = HostKeyInfo(
    host_id="[127.0.0.2]:2222",
    key_type="ssh-ed25519",
    fingerprint="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    key_base64=UNKNOWN.key_base64,
    known_fingerprint="SHA256:3Xq2m1WqKkQ3b0q7kX1VbJ9zVbP0mU3M6s5oQy2vH0Q",
    known_file="/home/alice/.ssh/known_hosts",
    known_line=12,
)


def labels(dialog) -> list[str]:
    return [w.text() for w in dialog.findChildren(QLabel) if w.text()]


def test_unknown_key_shows_type_and_fingerprint_and_trust_writes_known_hosts(
    qtbot, tmp_path: Path
) -> None:
    app_file = tmp_path / "data" / "gpu-tray" / "known_hosts"
    reconnected: list[str] = []
    d = TrustDialog(
        "node3",
        UNKNOWN,
        trust=lambda info: trust(info, app_file),
        on_trusted=reconnected.append,
    )
    qtbot.addWidget(d)
    d.show()
    assert d.windowTitle() == "Trust the host key of node3?"
    assert d.fingerprint.text() == "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
    shown = labels(d)
    assert "ssh-ed25519" in shown and "[127.0.0.2]:2222" in shown
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in shown
    assert d.cancel_button.isDefault()  # Enter does not trust
    with qtbot.waitSignal(d.trusted, timeout=10_000) as blocker:
        qtbot.mouseClick(d.trust_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["node3"]
    assert reconnected == ["node3"]
    assert app_file.read_text() == f"[127.0.0.2]:2222 ssh-ed25519 {UNKNOWN.key_base64}\n"
    assert d.result() == d.DialogCode.Accepted


def test_cancel_writes_nothing(qtbot, tmp_path: Path) -> None:
    app_file = tmp_path / "known_hosts"
    d = TrustDialog("node3", UNKNOWN, trust=lambda info: trust(info, app_file))
    qtbot.addWidget(d)
    with qtbot.assertNotEmitted(d.trusted, wait=200):
        qtbot.mouseClick(d.cancel_button, Qt.MouseButton.LeftButton)
    assert d.result() == d.DialogCode.Rejected
    assert not app_file.exists()


def test_a_failed_write_is_shown_and_trust_can_be_retried(qtbot, tmp_path: Path) -> None:
    blocked = tmp_path / "known_hosts"
    blocked.mkdir()  # a folder where the file should be
    d = TrustDialog("node3", UNKNOWN, trust=lambda info: trust(info, blocked))
    qtbot.addWidget(d)
    d.show()
    qtbot.mouseClick(d.trust_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(d.error.isVisible, timeout=10_000)
    assert d.error.text() == f"Could not save the key: [Errno 21] Is a directory: '{blocked}'"
    assert d.trust_button.isEnabled()
    assert d.isVisible()


def test_changed_key_has_no_accept_button_and_says_what_to_remove(qtbot) -> None:
    d = TrustDialog("node3", CHANGED)
    qtbot.addWidget(d)
    d.show()
    assert d.windowTitle() == "Host key changed: node3"
    buttons = d.buttons.buttons()
    assert [d.buttons.standardButton(b) for b in buttons] == [QDialogButtonBox.StandardButton.Close]
    assert d.trust_button is None
    assert not [b for b in d.findChildren(QPushButton) if "trust" in b.text().lower()]
    assert d.known_fingerprint.text() == "SHA256:3Xq2m1WqKkQ3b0q7kX1VbJ9zVbP0mU3M6s5oQy2vH0Q"
    assert d.fingerprint.text() == "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
    assert d.location.text() == "/home/alice/.ssh/known_hosts, line 12"
    assert d.command.text() == ("ssh-keygen -R '[127.0.0.2]:2222' -f /home/alice/.ssh/known_hosts")
    assert "The host key of node3 has CHANGED. gpu-tray will not connect." in labels(d)
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert d.result() == d.DialogCode.Rejected


def test_revoked_key_is_refused_too(qtbot) -> None:
    revoked = HostKeyInfo(
        UNKNOWN.host_id,
        UNKNOWN.key_type,
        UNKNOWN.fingerprint,
        UNKNOWN.key_base64,
        known_fingerprint=UNKNOWN.fingerprint,
        known_file="/etc/ssh/ssh_known_hosts",
        known_line=3,
    )
    d = TrustDialog("node3", revoked)
    qtbot.addWidget(d)
    assert d.trust_button is None
    assert "The host key of node3 is revoked" in labels(d)
