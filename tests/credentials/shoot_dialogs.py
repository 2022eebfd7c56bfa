"""Screenshots of the settings dialog, the host-key dialogs, the welcome dialog and the
password prompt, as a user sees them on a real X server (run by test_screenshots.py
under Xvfb): `python -m tests.credentials.shoot_dialogs OUTDIR`.

The data is what a user would have: a ~/.ssh/config with a few hosts, a config
with one host that fails to log in, and no keyring (the banner shows).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from gpu_tray.core.config import parse_config
from gpu_tray.core.models import HostKeyInfo
from gpu_tray.credentials.keyring_store import SecretRequest, SecretStore
from gpu_tray.ui.dialogs.first_run import FirstRunDialog
from gpu_tray.ui.dialogs.secret_prompt import SecretPromptDialog
from gpu_tray.ui.dialogs.trust import TrustDialog
from gpu_tray.ui.settings.dialog import SettingsDialog

SSH_CONFIG = """\
Host gpu-node1 gpu-node2
    HostName %h.lab.example.org
    User alice
Host bastion
    HostName bastion.example.org
Host node3
    HostName 10.0.0.3
    Port 2222
    ProxyJump bastion
Host github.com
"""

CONFIG = """\
poll_interval_s = 10

[[hosts]]
name = "gpu-node1"

[[hosts]]
name = "node3"
hostname = "10.0.0.3"
port = 2222
user = "a.very-long-username"
auth = "password"
proxy_jump = "bastion"
free = { max_memory_mib = 1024, max_utilization_pct = 5 }
"""

CHANNELS_CONFIG = CONFIG + """
[[channels]]
name = "lab-slack"

[[channels]]
name = "phone"

[[channels]]
name = "team-mail"

[[watch]]
event = "host_down"
channels = ["desktop", "lab-slack"]
"""


class MemoryKeyring:
    """An in-memory keyring backend with two channel URLs stored (not the real one: the
    screenshot shows the page, the keyring is tested elsewhere)."""

    name = "SecretService Keyring"

    def __init__(self) -> None:
        self.items = {
            ("gpu-tray", "channel:lab-slack"): "slack://T0/B0/X0",
            ("gpu-tray", "channel:phone"): "ntfy://ntfy.sh/lab-gpus",
        }

    def get_password(self, service: str, account: str) -> str | None:
        return self.items.get((service, account))

    def set_password(self, service: str, account: str, secret: str) -> None:
        self.items[(service, account)] = secret

    def delete_password(self, service: str, account: str) -> None:
        self.items.pop((service, account), None)


KEY = HostKeyInfo(
    host_id="[10.0.0.3]:2222",
    key_type="ssh-ed25519",
    fingerprint="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    key_base64="AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
)
CHANGED = HostKeyInfo(
    KEY.host_id,
    KEY.key_type,
    KEY.fingerprint,
    KEY.key_base64,
    known_fingerprint="SHA256:3Xq2m1WqKkQ3b0q7kX1VbJ9zVbP0mU3M6s5oQy2vH0Q",
    known_file="/home/alice/.ssh/known_hosts",
    known_line=12,
)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    work = out / "shoot-data"
    work.mkdir(exist_ok=True)
    ssh_config = work / "ssh_config"
    ssh_config.write_text(SSH_CONFIG)
    config_path = work / "config.toml"
    config_path.write_text(CONFIG)
    store = SecretStore(type("Keyring", (), {"__module__": "keyring.backends.fail"})())
    store.status()

    def grab(widget: QWidget, name: str) -> None:
        widget.show()
        widget.raise_()
        for _ in range(5):
            app.processEvents()
        widget.grab().save(str(out / name))

    settings = SettingsDialog(
        parse_config(CONFIG, config_path),
        config_path,
        store,
        start_at_login=True,
        set_start_at_login=lambda _: None,
        ssh_config_path=ssh_config,
    )
    settings.host_list.setCurrentRow(1)
    settings.editor.port.setText("70000")
    settings._edited()
    settings._test_message(
        "auth_failed: Authentication failed for a.very-long-username@10.0.0.3:2222 (tried "
        "password from the keyring): the server rejected the password stored for "
        "a.very-long-username@10.0.0.3:2222. Set it with `gpu-tray password set node3`",
        ok=False,
    )
    first_run = FirstRunDialog(work / "new-config.toml", ssh_config_path=ssh_config)
    channels_path = work / "channels-config.toml"
    channels_path.write_text(CHANNELS_CONFIG)
    with_channels = SettingsDialog(
        parse_config(CHANNELS_CONFIG, channels_path),
        channels_path,
        SecretStore(MemoryKeyring()),
    )
    with_channels.tabs.setCurrentWidget(with_channels.channels_page)
    page = with_channels.channels_page

    def shoot() -> None:
        grab(settings, "settings-hosts.png")
        settings.tabs.setCurrentIndex(1)
        grab(settings, "settings-polling.png")
        settings.close()
        page.list.setCurrentRow(1)
        page.url.setText("ntfy://ntfy.sh/lab-gpus-2")
        page._say("Delivered a test message to phone.", ok=True)
        grab(with_channels, "settings-channels.png")
        with_channels.close()
        grab(TrustDialog("node3", KEY), "trust-unknown.png")
        grab(TrustDialog("node3", CHANGED), "trust-changed.png")
        first_run.checklist.set_checked("gpu-node1")
        first_run.checklist.set_checked("gpu-node2")
        grab(first_run, "first-run.png")
        request = SecretRequest.for_password(
            "a.very-long-username", "10.0.0.3", 2222, host_name="node3", rejected=True
        )
        grab(SecretPromptDialog(request, store), "password-prompt.png")
        app.quit()

    def when_loaded() -> None:
        looked_up = page.list.count() and page.list.item(0).text().endswith(")")
        if first_run.checklist.is_loaded and looked_up:
            shoot()
        else:
            QTimer.singleShot(50, when_loaded)

    first_run.show()
    settings.show()
    QTimer.singleShot(50, when_loaded)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
