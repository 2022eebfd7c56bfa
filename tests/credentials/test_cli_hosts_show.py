"""`gpu-tray hosts show NAME [--json]` as a subprocess: what gpu-tray will connect to,
where each value came from, and exit status 2 with the file and line for a config that
gpu-tray refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.credentials.cli_helpers import User

SSH_CONFIG = """\
Include conf.d/*.conf
Host bastion
  HostName bastion.example.org
  User jump
Host *
  IdentityFile ~/.ssh/lab_key
  ConnectTimeout 5
"""

GPU_CONF = """\
# written by the cluster docs
Host gpu7
  HostName GPU7.Lab.Example.ORG
  User hal # admin
  Port 2207
  ProxyJump bastion,ops@gw:2022
Host gpu8
  ProxyCommand ssh -W %h:%p bastion
"""


@pytest.fixture
def user(tmp_path: Path) -> User:
    u = User(tmp_path)
    (u.home / ".ssh" / "config").write_text(SSH_CONFIG)
    (u.home / ".ssh" / "conf.d").mkdir()
    (u.home / ".ssh" / "conf.d" / "gpu.conf").write_text(GPU_CONF)
    u.config.parent.mkdir(parents=True)
    u.config.write_text('[[hosts]]\nname = "gpu7"\nuser = "alice"\n')
    return u


def test_json_has_the_public_keys_and_origins(user: User) -> None:
    r = user.run("hosts", "show", "gpu7", "--json", USER="me", LOGNAME="me")
    assert (r.returncode, r.stderr) == (0, "")
    data = json.loads(r.stdout)
    ssh = user.home / ".ssh"
    assert {k: data[k] for k in ("name", "hostname", "port", "user", "proxy_jump",
                                 "identity_files")} == {
        "name": "gpu7",
        "hostname": "gpu7.lab.example.org",
        "port": 2207,
        "user": "alice",  # config.toml wins over ~/.ssh/config, like `ssh -l`
        "proxy_jump": ["jump@bastion.example.org:22", "ops@gw:2022"],
        "identity_files": [str(ssh / "lab_key")],
    }  # fmt: skip
    assert data["connect_timeout_s"] == 5.0
    assert data["in_config_toml"] is True
    assert data["known_hosts_files"] == [
        str(ssh / "known_hosts"), str(ssh / "known_hosts2"), "/etc/ssh/ssh_known_hosts",
        str(user.app_known_hosts),
    ]  # fmt: skip
    assert data["origins"] == {
        "hostname": f"{ssh}/conf.d/gpu.conf:3",
        "port": f"{ssh}/conf.d/gpu.conf:5",
        "user": "config.toml",
        "proxy_jump": f"{ssh}/conf.d/gpu.conf:6",
        "identity_files": [f"{ssh}/config:6"],
        "known_hosts_files": None,
        "connect_timeout_s": f"{ssh}/config:7",
    }
    assert [(j["name"], j["origins"]["hostname"], j["origins"]["user"]) for j in data["jumps"]] == [
        ("bastion", f"{ssh}/config:3", f"{ssh}/config:4"),
        ("gw", None, f"{ssh}/conf.d/gpu.conf:6"),
    ]


def test_table_is_aligned_and_says_where_each_value_comes_from(user: User) -> None:
    r = user.run("hosts", "show", "gpu7", USER="me", LOGNAME="me")
    assert (r.returncode, r.stderr) == (0, "")
    home, data = user.home, user.data_dir
    lines = r.stdout.splitlines()
    assert lines[0] == "gpu7"
    value_at = lines[1].index("gpu7.lab")
    origin_at = lines[1].index("~/.ssh/conf.d")
    rows = []
    for line in lines[1:]:
        label, value, origin = line[:value_at], line[value_at:origin_at], line[origin_at:]
        assert line[value_at - 2 : value_at] == "  " and line[origin_at - 2 : origin_at] in ("  ", "")
        rows.append((label.strip(), value.strip(), origin))
    assert rows == [
        ("hostname", "gpu7.lab.example.org", "~/.ssh/conf.d/gpu.conf:3"),
        ("port", "2207", "~/.ssh/conf.d/gpu.conf:5"),
        ("user", "alice", "config.toml"),
        ("proxy jump", "jump@bastion.example.org:22 (bastion)", "~/.ssh/conf.d/gpu.conf:6"),
        ("", "ops@gw:2022 (gw)", ""),
        ("identity file", f"{home}/.ssh/lab_key", "~/.ssh/config:6"),
        ("known_hosts", f"{home}/.ssh/known_hosts", "default"),
        ("", f"{home}/.ssh/known_hosts2", "default"),
        ("", "/etc/ssh/ssh_known_hosts", "default"),
        ("", f"{data}/gpu-tray/known_hosts", "gpu-tray's own"),
        ("connect timeout", "5 s", "~/.ssh/config:7"),
    ]
    assert origin_at == value_at + len(f"{data}/gpu-tray/known_hosts") + 2  # the widest value


def test_a_name_not_in_config_toml_is_looked_up_in_ssh_config_alone(user: User) -> None:
    r = user.run("hosts", "show", "bastion", "--json", USER="me", LOGNAME="me")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["hostname"], data["user"], data["port"], data["in_config_toml"]) == (
        "bastion.example.org", "jump", 22, False,
    )  # fmt: skip


def test_proxy_command_exits_2_naming_file_and_line(user: User) -> None:
    r = user.run("hosts", "show", "gpu8", USER="me", LOGNAME="me")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"gpu-tray: hosts show gpu8: {user.home}/.ssh/conf.d/gpu.conf, line 8: gpu8 uses "
        "ProxyCommand, which runs a shell command, and gpu-tray never runs shell commands; "
        "use ProxyJump instead\n"
    )


def test_match_exec_exits_2_naming_file_and_line(user: User) -> None:
    (user.home / ".ssh" / "config").write_text('Match exec "test -f /tmp/vpn-up"\n  User x\n')
    r = user.run("hosts", "show", "gpu7", "--json", USER="me", LOGNAME="me")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"gpu-tray: hosts show gpu7: {user.home}/.ssh/config, line 1: Match exec runs a shell "
        "command to decide, and gpu-tray never runs shell commands; use Match "
        "host/user/localuser, or a Host block\n"
    )
