"""The first-run import list follows `Include`, as ssh does: hosts written by cluster docs
or Teleport into ~/.ssh/config.d/ are offered, in place, with what ssh would use."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.ui.dialogs.first_run import FirstRunDialog

MAIN = """\
Include config.d/*.conf
Host bastion
    HostName bastion.example.org
    User jump
Host legacy
    ProxyCommand nc %h %p
Host *
    User alice  # the default for the rest
"""
CLUSTER = """\
# written by the cluster docs
Host gpu7 gpu8
    HostName %h.cluster.example.org
    Port 2207
    ProxyJump bastion
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh" / "config.d").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(MAIN)
    (home / ".ssh" / "config.d" / "cluster.conf").write_text(CLUSTER)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_hosts_from_included_files_are_listed_in_place(qtbot, home: Path) -> None:
    d = FirstRunDialog(home / "gpu-tray.toml", ssh_config_path=home / ".ssh" / "config")
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: d.checklist.is_loaded, timeout=10_000)
    lst = d.checklist.list
    assert [lst.item(i).text() for i in range(lst.count())] == [
        "gpu7    alice@gpu7.cluster.example.org:2207 via bastion",
        "gpu8    alice@gpu8.cluster.example.org:2207 via bastion",
        "bastion    jump@bastion.example.org",
        "legacy",  # a ProxyCommand gpu-tray will not run: shown unresolved
    ]
