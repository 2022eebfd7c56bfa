"""The first-run wizard (pytest-qt, offscreen): import ticked ~/.ssh/config hosts, add one
by hand, or choose the demo, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gpu_tray.core.config import load_config
from gpu_tray.core.settings import HostConfig
from gpu_tray.ui.dialogs.first_run import FirstRunDialog

SSH_CONFIG = """\
# work
Host gpu-node1 gpu-node2
    HostName %h.lab.example.org
    User alice
Host bastion
    HostName bastion.example.org
Match host *.internal
    User svc
Host node3
    HostName 10.0.0.3
    Port 2222
    ProxyJump bastion
Host *
    ServerAliveInterval 30
"""


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    ssh = tmp_path / "ssh_config"
    ssh.write_text(SSH_CONFIG)
    return ssh, tmp_path / "config" / "gpu-tray" / "config.toml"


def wizard(qtbot, ssh: Path, config: Path) -> FirstRunDialog:
    d = FirstRunDialog(config, ssh_config_path=ssh)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: d.checklist.is_loaded, timeout=10_000)
    return d


def test_lists_ssh_config_hosts_in_order(qtbot, paths) -> None:
    d = wizard(qtbot, *paths)
    lst = d.checklist.list
    assert [lst.item(i).text() for i in range(lst.count())] == [
        "gpu-node1    alice@gpu-node1.lab.example.org",
        "gpu-node2    alice@gpu-node2.lab.example.org",
        "bastion    bastion.example.org",
        "node3    10.0.0.3:2222 via bastion",
    ]
    assert d.checklist.status.text() == (f"Hosts in {paths[0]}: tick the GPU servers to watch.")
    assert not d.add_button.isEnabled()  # nothing chosen yet


def test_import_writes_the_chosen_hosts(qtbot, paths) -> None:
    ssh, config_path = paths
    d = wizard(qtbot, ssh, config_path)
    d.checklist.set_checked("gpu-node2")
    d.checklist.set_checked("node3")
    assert d.add_button.isEnabled()
    with qtbot.waitSignal(d.hostsAdded, timeout=10_000) as blocker:
        qtbot.mouseClick(d.add_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].hosts == (HostConfig(name="gpu-node2"), HostConfig(name="node3"))
    assert load_config(config_path).hosts == blocker.args[0].hosts
    assert config_path.read_text() == (
        '[[hosts]]\nname = "gpu-node2"\n\n[[hosts]]\nname = "node3"\n'
    )


def test_add_one_by_hand_with_inline_checks(qtbot, paths) -> None:
    ssh, config_path = paths
    d = wizard(qtbot, ssh, config_path)
    qtbot.keyClicks(d.name, "gpu9.lab")
    assert d.add_button.isEnabled()
    qtbot.keyClicks(d.port, "22x")
    assert d._errors["port"].isVisible()
    assert d._errors["port"].text() == "Port must be a whole number from 1 to 65535, got '22x'"
    with qtbot.assertNotEmitted(d.hostsAdded, wait=300):
        qtbot.mouseClick(d.add_button, Qt.MouseButton.LeftButton)
    assert not config_path.exists()
    qtbot.keyClick(d.port, Qt.Key.Key_Backspace)
    assert not d._errors["port"].isVisible()
    qtbot.keyClicks(d.user, "a.very-long-username")
    with qtbot.waitSignal(d.hostsAdded, timeout=10_000) as blocker:
        qtbot.mouseClick(d.add_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].hosts == (
        HostConfig(name="gpu9.lab", port=22, user="a.very-long-username"),
    )


def test_demo_writes_nothing(qtbot, paths) -> None:
    ssh, config_path = paths
    d = wizard(qtbot, ssh, config_path)
    with qtbot.waitSignal(d.demoChosen, timeout=2_000):
        qtbot.mouseClick(d.demo_button, Qt.MouseButton.LeftButton)
    assert d.result() == d.DialogCode.Accepted
    assert not config_path.exists()


def test_no_ssh_config(qtbot, tmp_path: Path) -> None:
    d = wizard(qtbot, tmp_path / "missing", tmp_path / "config.toml")
    assert d.checklist.status.text() == f"No Host entries in {tmp_path / 'missing'}."
    assert not d.checklist.list.isVisible()


def test_unreadable_ssh_config_says_why(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "ssh_config"
    folder.mkdir()
    d = wizard(qtbot, folder, tmp_path / "config.toml")
    assert d.checklist.status.text() == (
        f"Cannot read {folder}: [Errno 21] Is a directory: '{folder}'"
    )
