"""The settings dialog with pytest-qt (offscreen): what it writes to config.toml, what it
refuses, and its password field. The connection test against real sshd hosts is in
test_settings_connection.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gpu_tray.core.config import load_config
from gpu_tray.core.settings import FreeThresholds, HostConfig, NotifyConfig, WatchSpec
from gpu_tray.credentials.keyring_store import NO_KEYRING_MESSAGE, SecretStore
from gpu_tray.ui.settings.dialog import SettingsDialog
from tests.credentials.test_secret_store import DictBackend

ORIGINAL = """\
# Our lab's GPU boxes
poll_interval_s = 10  # seconds

[[hosts]]
name = "gpu-node1"  # the old one

[[hosts]]
name = "node3"
hostname = "10.0.0.3"  # behind the bastion
user = "alice"

[[watch]]
host = "gpu-node1"  # tell me about node1
count = 1
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(ORIGINAL)
    return path


@pytest.fixture
def backend() -> DictBackend:
    return DictBackend()


@pytest.fixture
def dialog(qtbot, config_path: Path, backend: DictBackend) -> SettingsDialog:
    d = SettingsDialog(load_config(config_path), config_path, SecretStore(backend))
    qtbot.addWidget(d)
    d.show()
    return d


def type_into(qtbot, edit, text: str) -> None:
    edit.selectAll()
    if text:
        qtbot.keyClicks(edit, text)
    else:
        qtbot.keyClick(edit, Qt.Key.Key_Delete)


def save(qtbot, d: SettingsDialog):
    with qtbot.waitSignal(d.saved, timeout=10_000) as blocker:
        qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_lists_the_hosts_and_shows_the_first(dialog: SettingsDialog) -> None:
    assert dialog.host_names() == ["gpu-node1", "node3"]
    assert dialog.editor.name.text() == "gpu-node1"
    dialog.host_list.setCurrentRow(1)
    assert (dialog.editor.hostname.text(), dialog.editor.user.text()) == ("10.0.0.3", "alice")


def test_add_a_host_writes_it_and_keeps_comments(
    qtbot, dialog: SettingsDialog, config_path: Path
) -> None:
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    e = dialog.editor
    type_into(qtbot, e.name, "gpu-h100")
    type_into(qtbot, e.hostname, "10.0.0.7")
    type_into(qtbot, e.port, "2222")
    type_into(qtbot, e.user, "a.very-long-username")
    e.auth.setCurrentIndex(e.auth.findData("key"))
    type_into(qtbot, e.identity_file, "~/.ssh/id_lab")
    type_into(qtbot, e.proxy_jump, "bastion, gw")
    e.own_free.setChecked(True)
    e.max_memory.setValue(2048)
    e.max_utilization.setValue(5)
    assert dialog.host_list.item(2).text() == "gpu-h100"

    config = save(qtbot, dialog)
    assert dialog.result() == dialog.DialogCode.Accepted
    expected = HostConfig(
        name="gpu-h100",
        hostname="10.0.0.7",
        port=2222,
        user="a.very-long-username",
        identity_file="~/.ssh/id_lab",
        proxy_jump="bastion,gw",
        auth="key",
        free=FreeThresholds(2048, 5),
    )
    assert config.hosts[2] == expected
    assert load_config(config_path).hosts[2] == expected
    text = config_path.read_text()
    for comment in ("# Our lab's GPU boxes", "# the old one", "# behind the bastion", "# seconds"):
        assert comment in text
    assert text.startswith(ORIGINAL.split("[[watch]]")[0])  # untouched above the new host


def test_edit_remove_and_reorder(qtbot, dialog: SettingsDialog, config_path: Path) -> None:
    dialog.host_list.setCurrentRow(1)
    type_into(qtbot, dialog.editor.port, "2200")
    type_into(qtbot, dialog.editor.name, "node3-renamed")
    qtbot.mouseClick(dialog.up_button, Qt.MouseButton.LeftButton)
    assert dialog.host_names() == ["node3-renamed", "gpu-node1"]
    config = save(qtbot, dialog)
    assert [h.name for h in config.hosts] == ["node3-renamed", "gpu-node1"]
    assert config.hosts[0] == HostConfig(
        name="node3-renamed", hostname="10.0.0.3", port=2200, user="alice"
    )
    text = config_path.read_text()
    assert "# behind the bastion" in text and "# the old one" in text
    assert config.watch == (WatchSpec(host="gpu-node1", count=1),)

    d2 = SettingsDialog(load_config(config_path), config_path, SecretStore(DictBackend()))
    qtbot.addWidget(d2)
    d2.host_list.setCurrentRow(1)  # gpu-node1
    qtbot.mouseClick(d2.remove_button, Qt.MouseButton.LeftButton)
    assert d2.host_names() == ["node3-renamed"]
    assert d2.editor.name.text() == "node3-renamed"
    config = save(qtbot, d2)
    assert [h.name for h in config.hosts] == ["node3-renamed"]
    assert config.watch == ()  # its rule went with it
    assert "gpu-node1" not in config_path.read_text()


def test_an_nvidia_smi_path_is_saved_and_kept(
    qtbot, dialog: SettingsDialog, config_path: Path
) -> None:
    path = "/opt/nvidia tools/bin/nvidia-smi"
    type_into(qtbot, dialog.editor.nvidia_smi, path)
    config = save(qtbot, dialog)
    assert config.hosts[0] == HostConfig(name="gpu-node1", nvidia_smi=path)
    assert f'nvidia_smi = "{path}"' in config_path.read_text()
    # Edited again without touching it, the path stays.
    d2 = SettingsDialog(load_config(config_path), config_path, SecretStore(DictBackend()))
    qtbot.addWidget(d2)
    assert d2.editor.nvidia_smi.text() == path
    type_into(qtbot, d2.editor.port, "2222")
    assert save(qtbot, d2).hosts[0].nvidia_smi == path


def test_a_renamed_host_keeps_its_watch_rules(qtbot, dialog: SettingsDialog) -> None:
    type_into(qtbot, dialog.editor.name, "node1")
    config = save(qtbot, dialog)
    assert config.watch == (WatchSpec(host="node1", count=1),)


@pytest.mark.parametrize(
    ("field", "text", "error", "message"),
    [
        ("port", "70000", "port", "Port must be an integer from 1 to 65535, got 70000"),
        ("port", "22a", "port", "Port must be a whole number from 1 to 65535, got '22a'"),
        ("name", "", "name", "A name is required (an alias from ~/.ssh/config, or a hostname)"),
        ("name", "node3", "name", "Another host is already called 'node3'"),
        (
            "name",
            "gpu node",
            "name",
            "'gpu node' has characters that are not allowed in a host or user name",
        ),
        (
            "user",
            "al;ice",
            "user",
            "User 'al;ice' has characters that are not allowed in a host or user name",
        ),
        (
            "nvidia_smi",
            "bin/nvidia-smi",
            "nvidia_smi",
            "nvidia-smi path must be an absolute path on the host, such as "
            "'/usr/local/nvidia/bin/nvidia-smi', got 'bin/nvidia-smi'",
        ),
        (
            "proxy_jump",
            "a,,b",
            "proxy_jump",
            "ProxyJump 'a,,b' is not a comma-separated list of hosts ([user@]host[:port])",
        ),
    ],
)
def test_invalid_input_shows_the_message_and_writes_nothing(
    qtbot,
    dialog: SettingsDialog,
    config_path: Path,
    field: str,
    text: str,
    error: str,
    message: str,
) -> None:
    type_into(qtbot, getattr(dialog.editor, field), text)
    assert dialog.editor.problem_text(error) == message
    label = dialog.findChild(type(dialog.save_error), f"error_{error}")
    assert label is not None and label.isVisible()
    with qtbot.assertNotEmitted(dialog.saved, wait=300):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    shown = (
        "the new host" if field == "name" and not text else text if field == "name" else "gpu-node1"
    )
    assert dialog.save_error.text() == f"Fix the marked fields of {shown} first: nothing was saved."
    assert dialog.isVisible()
    assert config_path.read_text() == ORIGINAL


def test_save_goes_to_the_host_that_is_wrong(
    qtbot, dialog: SettingsDialog, config_path: Path
) -> None:
    type_into(qtbot, dialog.editor.port, "0")
    dialog.host_list.setCurrentRow(1)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.host_list.currentRow() == 0
    assert dialog.editor.problem_text("port") == "Port must be an integer from 1 to 65535, got 0"
    assert config_path.read_text() == ORIGINAL


def test_a_file_broken_meanwhile_is_reported_and_left_alone(
    qtbot, dialog: SettingsDialog, config_path: Path
) -> None:
    broken = ORIGINAL + "\npoll_interval_s = 3\n"  # duplicate key: not valid TOML
    config_path.write_text(broken)
    type_into(qtbot, dialog.editor.port, "2201")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.save_error.isVisible, timeout=10_000)
    assert dialog.save_error.text().startswith(f"{config_path}")
    assert dialog.save_error.text().endswith("\nNothing was saved.")
    assert config_path.read_text() == broken


def test_polling_and_notification_options(qtbot, config_path: Path) -> None:
    calls: list[bool] = []
    d = SettingsDialog(
        load_config(config_path),
        config_path,
        SecretStore(DictBackend()),
        start_at_login=False,
        set_start_at_login=calls.append,
    )
    qtbot.addWidget(d)
    d.poll_interval.setValue(30)
    d.max_memory.setValue(1024)
    d.max_utilization.setValue(20)
    d.confirm_polls.setValue(3)
    d.sound.setChecked(True)
    assert d.start_at_login.isEnabled()
    d.start_at_login.setChecked(True)
    config = save(qtbot, d)
    assert config.poll_interval_s == 30
    assert config.free == FreeThresholds(1024, 20)
    assert config.notify == NotifyConfig(confirm_polls=3, sound=True)
    assert calls == [True]
    text = config_path.read_text()
    assert "poll_interval_s = 30  # seconds" in text


def test_start_at_login_is_off_without_a_backend(qtbot, config_path: Path) -> None:
    d = SettingsDialog(load_config(config_path), config_path, SecretStore(DictBackend()))
    qtbot.addWidget(d)
    assert not d.start_at_login.isEnabled()
    assert d.start_at_login.toolTip() == "Not available on this system"


def test_nothing_changed_writes_the_same_text(
    qtbot, dialog: SettingsDialog, config_path: Path
) -> None:
    save(qtbot, dialog)
    assert config_path.read_text() == ORIGINAL


def test_import_from_ssh_config(qtbot, tmp_path: Path, config_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        "Host gpu-node1 gpu-node2\n  User alice\nHost *.lab\n  User bob\nHost node9\n  Port 2222\n"
    )
    d = SettingsDialog(
        load_config(config_path),
        config_path,
        SecretStore(DictBackend()),
        ssh_config_path=ssh_config,
    )
    qtbot.addWidget(d)
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    importer = d.import_dialog
    qtbot.waitUntil(lambda: importer.checklist.is_loaded, timeout=10_000)
    lst = importer.checklist.list
    assert [lst.item(i).text() for i in range(lst.count())] == [
        "gpu-node1    alice@gpu-node1    (already added)",
        "gpu-node2    alice@gpu-node2",
        "node9    node9:2222",
    ]
    assert not importer.ok.isEnabled()
    importer.checklist.set_checked("node9")
    assert importer.ok.isEnabled()
    qtbot.mouseClick(importer.ok, Qt.MouseButton.LeftButton)
    assert d.host_names() == ["gpu-node1", "node3", "node9"]
    config = save(qtbot, d)
    assert config.hosts[2] == HostConfig(name="node9")


def test_password_field_saves_to_the_keyring_and_forgets(
    qtbot, dialog: SettingsDialog, backend: DictBackend
) -> None:
    dialog.host_list.setCurrentRow(1)  # node3: alice@10.0.0.3:22
    assert dialog.secret_box.title() == "Password"
    type_into(qtbot, dialog.secret, "hunter2 and more")
    with qtbot.waitSignal(dialog.reconnectRequested, timeout=10_000) as blocker:
        qtbot.mouseClick(dialog.save_secret_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["node3"]
    assert dialog.secret.text() == ""  # the dialog keeps no copy
    assert backend.items == {("gpu-tray", "alice@10.0.0.3:22"): "hunter2 and more"}
    assert dialog.secret_status.text() == (
        "The password for alice@10.0.0.3:22: Saved in the system keyring (dict Keyring)."
    )
    qtbot.mouseClick(dialog.forget_secret_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.secret_status.text().startswith("Forgot"), timeout=10_000)
    assert dialog.secret_status.text() == "Forgot the password for alice@10.0.0.3:22."
    assert backend.items == {}
    qtbot.mouseClick(dialog.forget_secret_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.secret_status.text().startswith("Nothing"), timeout=10_000)
    assert dialog.secret_status.text() == (
        "Nothing to forget: no password for alice@10.0.0.3:22 was stored."
    )


def test_key_auth_asks_for_the_key_passphrase(
    qtbot, dialog: SettingsDialog, backend: DictBackend, tmp_path: Path
) -> None:
    e = dialog.editor
    e.auth.setCurrentIndex(e.auth.findData("key"))
    assert dialog.secret_box.title() == "Key passphrase (for the identity file)"
    type_into(qtbot, dialog.secret, "pp")
    qtbot.mouseClick(dialog.save_secret_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.secret_status.text().startswith("Set"), timeout=10_000)
    assert dialog.secret_status.text() == (
        "Set the identity file first: the passphrase belongs to a key"
    )
    type_into(qtbot, e.identity_file, str(tmp_path / "id_lab"))
    type_into(qtbot, dialog.secret, "pp")
    qtbot.mouseClick(dialog.save_secret_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.secret_status.text().startswith("The"), timeout=10_000)
    assert backend.items == {("gpu-tray", f"key:{tmp_path / 'id_lab'}"): "pp"}


def test_no_keyring_banner_and_session_only_password(qtbot, config_path: Path) -> None:
    fail = type("Keyring", (), {"__module__": "keyring.backends.fail"})()
    store = SecretStore(fail)
    d = SettingsDialog(load_config(config_path), config_path, store)
    qtbot.addWidget(d)
    d.show()
    assert d.keyring_banner.isVisible()
    assert d.keyring_banner.text() == NO_KEYRING_MESSAGE
    d.host_list.setCurrentRow(1)
    type_into(qtbot, d.secret, "s3")
    qtbot.mouseClick(d.save_secret_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "session" in d.secret_status.text(), timeout=10_000)
    assert d.secret_status.text() == (
        "The password for alice@10.0.0.3:22 is kept for this session only. "
        "No system keyring found: passwords will be kept for this session only"
    )
    assert store.password("alice", "10.0.0.3", 22) == "s3"


def test_password_needs_a_valid_host_first(qtbot, dialog: SettingsDialog, backend) -> None:
    type_into(qtbot, dialog.editor.port, "x")
    type_into(qtbot, dialog.secret, "pw")
    qtbot.mouseClick(dialog.save_secret_button, Qt.MouseButton.LeftButton)
    assert dialog.secret_status.text() == "Fix the host's fields above first."
    assert backend.items == {}
