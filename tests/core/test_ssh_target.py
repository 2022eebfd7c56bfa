"""Resolving a [[hosts]] entry against ~/.ssh/config, as `ssh NAME` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.target import (
    SshConfig,
    TargetError,
    parse_hop,
    resolve,
    ssh_config_hosts,
)

SSH_CONFIG = """\
Host gpu-node1
  HostName 10.0.0.1
  User alice
  Port 2201
  IdentityFile ~/.ssh/lab_key
  ConnectTimeout 3

Host bastion
  HostName bastion.example.org
  User jump

Host inner
  HostName 10.1.0.5
  ProxyJump bastion

Host behind-inner
  HostName 10.2.0.9
  ProxyJump inner

Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a

Host *.lab
  User labuser

Host *
  ServerAliveInterval 30
"""


@pytest.fixture
def cfg() -> SshConfig:
    return SshConfig.from_text(SSH_CONFIG)


def test_alias_takes_everything_from_ssh_config(cfg) -> None:
    t = resolve(HostConfig("gpu-node1"), cfg)
    assert (t.hostname, t.port, t.user, t.connect_timeout_s) == ("10.0.0.1", 2201, "alice", 3.0)
    assert t.identity_files == (str(Path.home() / ".ssh" / "lab_key"),)
    assert t.explicit_identities
    assert t.host_id == "[10.0.0.1]:2201"
    assert t.account == "alice@10.0.0.1:2201"


def test_config_toml_wins_over_ssh_config(cfg) -> None:
    t = resolve(HostConfig("gpu-node1", hostname="10.9.9.9", port=22, user="bob"), cfg)
    assert (t.hostname, t.port, t.user) == ("10.9.9.9", 22, "bob")
    assert t.host_id == "10.9.9.9"


def test_unknown_host_gets_defaults(cfg, monkeypatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "me")
    t = resolve(HostConfig("node7.example.com"), cfg)
    assert (t.hostname, t.port, t.user, t.connect_timeout_s) == ("node7.example.com", 22, "me", 10)
    assert not t.explicit_identities
    assert [Path(p).name for p in t.identity_files] == ["id_ed25519", "id_ecdsa", "id_rsa"]
    assert t.jumps == ()


def test_wildcard_blocks_apply(cfg) -> None:
    assert resolve(HostConfig("gpu3.lab"), cfg).user == "labuser"


def test_proxy_jump_hops_are_resolved_like_hosts(cfg) -> None:
    t = resolve(HostConfig("node", hostname="10.3.3.3", proxy_jump="bastion,root@inner:2022"), cfg)
    hops = [(h.alias, h.hostname, h.port, h.user) for h in t.jumps]
    # ssh runs this as `ssh -J bastion root@inner:2022`: a hop after the first is reached
    # behind -J, so `inner`'s own ProxyJump (bastion) is not used again.
    assert hops == [
        ("bastion", "bastion.example.org", 22, "jump"),
        ("inner", "10.1.0.5", 2022, "root"),
    ]


def test_proxy_jump_from_ssh_config_nests(cfg) -> None:
    t = resolve(HostConfig("behind-inner"), cfg)
    assert [h.alias for h in t.jumps] == ["bastion", "inner"]
    assert t.hostname == "10.2.0.9"


def test_proxy_jump_loop_is_an_error(cfg) -> None:
    with pytest.raises(TargetError) as exc:
        resolve(HostConfig("loop-a"), cfg)
    assert str(exc.value) == "ProxyJump for loop-a goes more than 8 hops deep (a loop?)"


@pytest.mark.parametrize(
    ("hop", "parsed"),
    [
        ("bastion", (None, "bastion", None)),
        ("alice@bastion:2222", ("alice", "bastion", 2222)),
        ("[fe80::1]:22", (None, "fe80::1", 22)),
    ],
)
def test_parse_hop(hop, parsed) -> None:
    assert parse_hop(hop) == parsed


def test_concrete_hosts_for_import() -> None:
    assert ssh_config_hosts(SSH_CONFIG + 'Host = "quoted"  # note\nhost a b\n') == [
        "gpu-node1", "bastion", "inner", "behind-inner", "loop-a", "loop-b", "quoted", "a", "b"
    ]  # fmt: skip
