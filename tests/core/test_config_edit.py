"""Editing config.toml: comments survive, invalid edits write nothing, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.config import ConfigError, load_config
from gpu_tray.core.config_edit import (
    add_host,
    add_watch,
    edit_config,
    move_host,
    remove_host,
    remove_watch,
    replace_host,
    set_free,
    set_value,
)
from gpu_tray.core.settings import FreeThresholds, HostConfig, WatchSpec

ORIGINAL = """\
# my lab
poll_interval_s = 10   # seconds

[[hosts]]
name = "gpu-node1"     # the big one

[[hosts]]
name = "node2"
port = 2222

[[watch]]
host = "node2"
gpu = 1
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "gpu-tray" / "config.toml"
    p.parent.mkdir()
    p.write_text(ORIGINAL)
    return p


def test_add_host_keeps_comments(cfg: Path) -> None:
    config = edit_config(cfg, lambda d: add_host(d, HostConfig("node3", user="alice", port=22)))
    text = cfg.read_text()
    assert "# my lab" in text and "# the big one" in text and "# seconds" in text
    assert [h.name for h in config.hosts] == ["gpu-node1", "node2", "node3"]
    assert load_config(cfg).hosts[2] == HostConfig("node3", port=22, user="alice")


def test_scalars_added_later_stay_top_level(cfg: Path) -> None:
    def change(d):
        set_value(d, None, "poll_interval_s", 30)
        set_value(d, "notify", "confirm_polls", 3)
        set_free(d, FreeThresholds(256, 5))

    config = edit_config(cfg, change)
    assert config.poll_interval_s == 30
    assert config.notify.confirm_polls == 3
    assert config.free == FreeThresholds(256, 5)
    assert [h.name for h in config.hosts] == ["gpu-node1", "node2"]


def test_new_file_is_created(tmp_path: Path) -> None:
    p = tmp_path / "new" / "config.toml"
    edit_config(p, lambda d: add_host(d, HostConfig("a")))
    assert load_config(p).hosts == (HostConfig("a"),)


def test_invalid_edit_writes_nothing(cfg: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        edit_config(cfg, lambda d: add_host(d, HostConfig("gpu-node1")))
    assert str(exc.value) == f"{cfg}, line 12: hosts[2].name: duplicate host name 'gpu-node1'"
    assert cfg.read_text() == ORIGINAL
    assert [p.name for p in cfg.parent.iterdir()] == ["config.toml"]


def test_replace_host_in_place(cfg: Path) -> None:
    config = edit_config(
        cfg,
        lambda d: replace_host(
            d,
            "gpu-node1",
            HostConfig("gpu-node1", hostname="10.0.0.1", free=FreeThresholds(100, 1)),
        ),
    )
    assert config.hosts[0] == HostConfig(
        "gpu-node1", hostname="10.0.0.1", free=FreeThresholds(100, 1)
    )
    assert "# the big one" in cfg.read_text()
    # dropping a field removes it
    config = edit_config(cfg, lambda d: replace_host(d, "node2", HostConfig("node2")))
    assert config.hosts[1] == HostConfig("node2")


def test_remove_host_drops_its_watch_rules(cfg: Path) -> None:
    config = edit_config(cfg, lambda d: remove_host(d, "node2"))
    assert [h.name for h in config.hosts] == ["gpu-node1"]
    assert config.watch == ()


def test_move_host(cfg: Path) -> None:
    config = edit_config(cfg, lambda d: move_host(d, "node2", 0))
    assert [h.name for h in config.hosts] == ["node2", "gpu-node1"]


def test_watch_add_is_idempotent_and_remove_by_key(cfg: Path) -> None:
    spec = WatchSpec(count=2, model="A100", min_free_memory_mib=40000)
    edit_config(cfg, lambda d: add_watch(d, spec))
    config = edit_config(cfg, lambda d: add_watch(d, spec))
    assert config.watch == (WatchSpec(host="node2", gpu=1), spec)
    config = edit_config(cfg, lambda d: remove_watch(d, WatchSpec(host="node2", gpu=1).key))
    assert config.watch == (spec,)
