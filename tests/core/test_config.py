"""config.toml: the public format, and errors that name the file, the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.config import ConfigError, load_config, parse_config, resolve_config_path
from gpu_tray.core.settings import FreeThresholds, WatchSpec

P = Path("/cfg/config.toml")

FULL = """\
poll_interval_s = 5

[free]
max_memory_mib = 1024
max_utilization_pct = 5

[[hosts]]
name = "gpu-node1"      # an alias from ~/.ssh/config

[[hosts]]
name = "node2"
hostname = "10.0.0.2"
port = 2222
user = "alice"
identity_file = "~/.ssh/id_ed25519"
proxy_jump = "bastion,gateway"
auth = "key"
free = { max_memory_mib = 100 }

[[sources]]
kind = "prometheus"
url = "http://prometheus.example:9090"

[[sources]]
kind = "slurm"
login = "login-node"

[notify]
confirm_polls = 3
sound = true

[[watch]]
host = "gpu-node1"
gpu = 2
count = 1
model = "A100"
min_free_memory_mib = 40000

[[watch]]
count = 2
"""


def test_full_example_loads() -> None:
    c = parse_config(FULL, P)
    assert c.poll_interval_s == 5.0
    assert c.free == FreeThresholds(1024, 5)
    assert [h.name for h in c.hosts] == ["gpu-node1", "node2"]
    node2 = c.hosts[1]
    assert (node2.hostname, node2.port, node2.user, node2.auth) == (
        "10.0.0.2",
        2222,
        "alice",
        "key",
    )
    assert node2.proxy_jump == "bastion,gateway"
    assert c.thresholds_for("node2") == FreeThresholds(100, 10)
    assert c.thresholds_for("gpu-node1") == FreeThresholds(1024, 5)
    assert [s.kind for s in c.sources] == ["prometheus", "slurm"]
    assert c.sources[1].login == "login-node"
    assert (c.notify.confirm_polls, c.notify.sound) == (3, True)
    assert c.watch[0] == WatchSpec("gpu-node1", 2, 1, "A100", 40000)
    assert c.watch[0].scope == "gpu"
    assert c.watch[1].scope == "cluster"


def test_three_line_config() -> None:
    c = parse_config('[[hosts]]\nname = "gpu-node1"\n', P)
    assert c.poll_interval_s == 10.0
    assert c.free == FreeThresholds(512, 10)
    assert c.notify.confirm_polls == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[hosts]]\nname = "a"\n\n[[hosts]]\nname = "b"\nport = "abc"\n',
            '/cfg/config.toml, line 6: hosts[1].port: must be an integer from 1 to 65535, got "abc"',
        ),
        (
            '[[hosts]]\nname = "a"\nport = 70000\n',
            "/cfg/config.toml, line 3: hosts[0].port: must be an integer from 1 to 65535, got 70000",
        ),
        (
            '[[hosts]]\nname = "a"\npassword = "hunter2"\n',
            "/cfg/config.toml, line 3: hosts[0].password: secrets never go in config.toml; "
            "store it in the system keyring with `gpu-tray password set HOST` or the Settings "
            "dialog",
        ),
        (
            "poll_intervall_s = 3\n",
            "/cfg/config.toml, line 1: poll_intervall_s: unknown key (expected one of: "
            "channels, free, hosts, idle, notify, poll_interval_s, sources, watch)",
        ),
        (
            "poll_interval_s = 0\n",
            "/cfg/config.toml, line 1: poll_interval_s: must be >= 1, got 0",
        ),
        (
            '[[hosts]]\nname = "a"\nfree = { max_memory_mib = -1 }\n',
            "/cfg/config.toml, line 3: hosts[0].free.max_memory_mib: must be an integer >= 0, "
            "got -1",
        ),
        (
            "[[hosts]\nname = 'a'\n",
            "/cfg/config.toml, line 1: not valid TOML: Expected ']]' at the end of an array "
            "declaration",
        ),
        (
            "[[watch]]\ngpu = 1\n",
            '/cfg/config.toml, line 2: watch[0].gpu: a GPU index needs a host = "..." in the '
            "same rule",
        ),
        (
            '[[hosts]]\nname = "a; rm -rf /"\n',
            "/cfg/config.toml, line 2: hosts[0].name: 'a; rm -rf /' has characters that are "
            "not allowed in a host or user name",
        ),
        (
            '[[hosts]]\nname = "a"\n[[hosts]]\nname = "a"\n',
            "/cfg/config.toml, line 4: hosts[1].name: duplicate host name 'a'",
        ),
        (
            "[[hosts]]\nport = 22\n",
            "/cfg/config.toml, line 1: hosts[0]: every [[hosts]] needs a name",
        ),
        (
            '[[sources]]\nkind = "prometheus"\n',
            '/cfg/config.toml, line 1: sources[0].url: a prometheus source needs url = "http://..."',
        ),
        (
            '[[sources]]\nkind = "nagios"\n',
            '/cfg/config.toml, line 2: sources[0].kind: must be "prometheus" or "slurm", got "nagios"',
        ),
        (
            '[notify]\nsound = "yes"\n',
            '/cfg/config.toml, line 2: notify.sound: must be true or false, got "yes"',
        ),
        (
            '[[hosts]]\nname = "a"\nauth = "kerberos"\n',
            '/cfg/config.toml, line 3: hosts[0].auth: must be "agent", "key" or "password", '
            'got "kerberos"',
        ),
        (
            'hosts = "gpu1"\n',
            "/cfg/config.toml, line 1: hosts: must be an array of tables, written [[hosts]]",
        ),
    ],
)
def test_errors_name_file_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, P)
    assert str(err.value) == message


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.toml: file not found$"):
        load_config(tmp_path / "config.toml")
    bad = tmp_path / "binary.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value).startswith(f"{bad}: cannot read it (")


def test_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GPU_TRAY_CONFIG", raising=False)
    assert resolve_config_path() == tmp_path / "xdg" / "gpu-tray" / "config.toml"
    monkeypatch.setenv("GPU_TRAY_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_config_path() == tmp_path / "env.toml"
    assert resolve_config_path(tmp_path / "cli.toml") == tmp_path / "cli.toml"
