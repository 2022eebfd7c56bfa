"""`gpu-tray hosts list|add|remove` as a subprocess: comments survive, bad input is refused
with exit status 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_tray.core.config import load_config
from gpu_tray.core.settings import FreeThresholds, HostConfig, WatchSpec
from tests.credentials.cli_helpers import User

ORIGINAL = """\
# Lab GPU servers (edited by hand)
poll_interval_s = 5  # quick

[[hosts]]
name = "gpu-node1"  # the old box

[[watch]]
host = "gpu-node1"  # tell me about node1
count = 1
"""


@pytest.fixture
def user(tmp_path: Path) -> User:
    u = User(tmp_path)
    u.config.parent.mkdir(parents=True)
    u.config.write_text(ORIGINAL)
    return u


def test_add_list_remove_keep_comments(user: User) -> None:
    r = user.run(
        "hosts",
        "add",
        "node3",
        "--hostname",
        "node3.lab.example.org",
        "--port",
        "2222",
        "--user",
        "a.very-long-username",
        "--proxy-jump",
        "bastion,gateway",
        "--auth",
        "key",
        "--identity-file",
        "~/.ssh/id_ed25519",
        "--max-memory-mib",
        "1024",
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, f"Added node3 to {user.config}.\n", "")
    text = user.config.read_text()
    assert text.startswith(ORIGINAL.split("[[watch]]")[0].rstrip("\n"))
    assert "# the old box" in text and "# tell me about node1" in text and "# quick" in text
    config = load_config(user.config)
    assert config.hosts[1] == HostConfig(
        name="node3",
        hostname="node3.lab.example.org",
        port=2222,
        user="a.very-long-username",
        identity_file="~/.ssh/id_ed25519",
        proxy_jump="bastion,gateway",
        auth="key",
        free=FreeThresholds(max_memory_mib=1024, max_utilization_pct=10),
    )

    r = user.run("hosts", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "NAME       HOSTNAME               PORT  USER                  AUTH  PROXYJUMP        FREE\n"
        "gpu-node1  -                      -     -                     -     -                -\n"
        "node3      node3.lab.example.org  2222  a.very-long-username  key   bastion,gateway  <=1024 MiB, <=10%\n"
    )
    listed = json.loads(user.run("hosts", "list", "--json").stdout)
    assert [h["name"] for h in listed] == ["gpu-node1", "node3"]
    assert listed[1]["free"] == {"max_memory_mib": 1024, "max_utilization_pct": 10}

    r = user.run("hosts", "remove", "gpu-node1")
    assert (r.returncode, r.stdout) == (
        0,
        f"Removed gpu-node1 and 1 watch rule naming it from {user.config}.\n",
    )
    after = user.config.read_text()
    # No `watch = []` hoisted above the first comment when the last rule goes.
    assert after.startswith("# Lab GPU servers (edited by hand)\npoll_interval_s = 5  # quick\n")
    assert "watch" not in after
    config = load_config(user.config)
    assert [h.name for h in config.hosts] == ["node3"]
    assert config.watch == ()


def test_global_config_option_before_the_subcommand(user: User, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    r = user.run("--config", str(other), "hosts", "add", "x")
    assert (r.returncode, r.stdout) == (0, f"Added x to {other}.\n")
    assert other.read_text() == '[[hosts]]\nname = "x"\n'
    assert user.config.read_text() == ORIGINAL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["hosts", "add", "gpu-node1"],
            "gpu-tray: a host named 'gpu-node1' is already in {config}\n",
        ),
        (
            ["hosts", "add", "n2", "--port", "70000"],
            "gpu-tray: hosts add: --port: must be an integer from 1 to 65535, got 70000\n"
            "Nothing was written.\n",
        ),
        (
            ["hosts", "add", "bad name"],
            "gpu-tray: hosts add: NAME: 'bad name' has characters that are not allowed in a "
            "host or user name\nNothing was written.\n",
        ),
        (
            ["hosts", "add", "n3", "--proxy-jump", "a,,b", "--max-utilization-pct", "101"],
            "gpu-tray: hosts add: --proxy-jump: 'a,,b' is not a comma-separated list of hosts "
            "([user@]host[:port])\n"
            "hosts add: --max-utilization-pct: must be an integer from 0 to 100, got 101\n"
            "Nothing was written.\n",
        ),
        (
            ["hosts", "remove", "nope"],
            "gpu-tray: no host named 'nope' in {config} (hosts: gpu-node1)\n",
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(user: User, args: list[str], message: str) -> None:
    r = user.run(*args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", message.format(config=user.config))
    assert user.config.read_text() == ORIGINAL


def test_usage_errors_exit_2(user: User) -> None:
    r = user.run("hosts")
    assert r.returncode == 2
    assert r.stderr.endswith(
        "gpu-tray hosts: error: the following arguments are required: ACTION\n"
    )
    r = user.run("hosts", "add", "x", "--port", "many")
    assert r.returncode == 2
    assert r.stderr.endswith(
        "gpu-tray hosts add: error: argument --port: invalid int value: 'many'\n"
    )
    r = user.run("hosts", "add", "x", "--auth", "telnet")
    assert r.returncode == 2
    assert "argument --auth: invalid choice: 'telnet'" in r.stderr


def test_list_without_a_config_says_where_it_looked(tmp_path: Path) -> None:
    u = User(tmp_path)
    r = u.run("hosts", "list")
    assert r.returncode == 2
    assert r.stderr == (
        f"gpu-tray: No configuration at {u.config}.\n"
        "Run `gpu-tray` to set one up, write one (see the README), "
        "or try the built-in demo cluster with --demo.\n"
    )


def test_add_creates_the_config(tmp_path: Path) -> None:
    u = User(tmp_path)
    r = u.run("hosts", "add", "gpu-node1")
    assert (r.returncode, r.stdout) == (0, f"Added gpu-node1 to {u.config}.\n")
    assert load_config(u.config).hosts == (HostConfig(name="gpu-node1"),)
    assert load_config(u.config).watch == ()
    assert WatchSpec().scope == "cluster"  # nothing else was added
