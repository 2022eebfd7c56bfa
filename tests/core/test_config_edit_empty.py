"""Removing the last watch rule or host leaves no `watch = []` / `hosts = []` behind."""

from __future__ import annotations

from pathlib import Path

from gpu_tray.core.config_edit import add_watch, edit_config, remove_host, remove_watch
from gpu_tray.core.settings import WatchSpec

TEXT = '# mine\npoll_interval_s = 5\n\n[[hosts]]\nname = "node3"  # big\n'


def test_removing_the_last_watch_restores_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEXT)
    spec = WatchSpec(host="node3", gpu=2)
    edit_config(path, lambda doc: add_watch(doc, spec))
    assert path.read_text() == TEXT + '[[watch]]\nhost = "node3"\ngpu = 2\ncount = 1\n'
    edit_config(path, lambda doc: remove_watch(doc, spec.key))
    assert path.read_text() == TEXT


def test_removing_the_last_host_drops_the_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEXT)
    edit_config(path, lambda doc: add_watch(doc, WatchSpec(host="node3")))
    config = edit_config(path, lambda doc: remove_host(doc, "node3"))
    assert config.hosts == () and config.watch == ()
    assert path.read_text() == "# mine\npoll_interval_s = 5\n"  # one final newline
