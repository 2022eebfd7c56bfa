"""What the tray runs on: demo, first run, a broken file, no hosts yet; and reloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.app.config_loading import load_app_config
from gpu_tray.app.tray_app import TrayApp
from gpu_tray.core.settings import WatchSpec
from gpu_tray.platform.notify import LogBackend
from tests.harness.scripted import gpu, host, write_cluster


@pytest.fixture(autouse=True)
def no_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPU_TRAY_CONFIG", raising=False)
    monkeypatch.delenv("GPU_TRAY_DEMO_SCRIPT", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_first_run_is_the_demo_with_a_hint(tmp_path: Path) -> None:
    loaded = load_app_config(None, demo=False)
    assert loaded.config.demo and not loaded.error
    assert loaded.notes == (
        "First run: this is the demo cluster.",
        f"Add your hosts in Settings… (they are saved to {tmp_path / 'xdg' / 'gpu-tray' / 'config.toml'}).",
    )
    assert loaded.watches_path is None


def test_demo_alone_ignores_the_users_config(tmp_path: Path) -> None:
    (tmp_path / "xdg" / "gpu-tray").mkdir(parents=True)
    (tmp_path / "xdg" / "gpu-tray" / "config.toml").write_text('[[watch]]\nhost = "real"\n')
    loaded = load_app_config(None, demo=True)
    assert loaded.config.demo and loaded.config.watch == ()
    assert loaded.notes == ("Demo cluster (simulated GPUs)",)
    assert loaded.watches_path is None  # demo watches never land in the real file


def test_demo_with_an_explicit_config_uses_and_saves_to_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('poll_interval_s = 3\n[[watch]]\nmodel = "A100"\n')
    loaded = load_app_config(str(path), demo=True)
    assert loaded.config.demo and loaded.config.poll_interval_s == 3
    assert loaded.config.watch == (WatchSpec(model="A100"),)
    assert loaded.watches_path == path


def test_a_broken_config_is_a_note_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[hosts]]\nname = 'node 3'\n")
    loaded = load_app_config(str(path), demo=False)
    assert loaded.error and not loaded.config.demo and loaded.config.hosts == ()
    assert loaded.notes == (
        f"{path}, line 2: hosts[0].name: 'node 3' has characters that are not allowed in a host or user name",
    )


def test_a_config_without_hosts_shows_the_demo(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("poll_interval_s = 5\n")
    loaded = load_app_config(str(path), demo=False)
    assert loaded.config.demo and loaded.config.poll_interval_s == 5
    assert loaded.notes == (f"No [[hosts]] in {path} yet: showing the demo cluster.",)


def test_reload_after_fixing_the_file_starts_polling(
    qapp, qtbot, tmp_path: Path, monkeypatch
) -> None:
    cluster = tmp_path / "cluster.json"
    write_cluster(cluster, [host("node3", [gpu(0, True)])])
    monkeypatch.setenv("GPU_TRAY_DEMO_SCRIPT", str(cluster))
    path = tmp_path / "c.toml"
    path.write_text("poll_interval_s = 0\n")
    loaded = load_app_config(str(path), demo=True)
    assert loaded.error
    app = TrayApp(loaded, [], notifier_chain=[("log", LogBackend)])
    try:
        app.start()
        menu = app.view.menu.menu
        menu.aboutToShow.emit()
        assert "reload" in [a.objectName() for a in menu.actions()]
        path.write_text("poll_interval_s = 1\n")
        app.reload_config()
        qtbot.waitUntil(lambda: "node3" in app.latest and app.latest["node3"].ok, timeout=10000)
        assert app.state().notes == ("Scripted cluster (from $GPU_TRAY_DEMO_SCRIPT)",)
        menu.aboutToShow.emit()
        assert "reload" not in [a.objectName() for a in menu.actions()]
    finally:
        app.stop()


def test_a_dying_library_thread_is_one_log_line_not_a_traceback(caplog, capsys) -> None:
    import logging
    import threading

    from gpu_tray.app.run import log_thread_deaths

    old = threading.excepthook
    try:
        log_thread_deaths()
        caplog.set_level(logging.INFO, "gpu_tray.app.run")

        def receiver() -> None:
            raise ConnectionResetError(104, "Connection reset by peer")

        t = threading.Thread(target=receiver, name="Thread-2 (_receiver)")
        t.start()
        t.join()
    finally:
        threading.excepthook = old
    assert caplog.messages == [
        "thread Thread-2 (_receiver) stopped: ConnectionResetError: "
        "[Errno 104] Connection reset by peer"
    ]
    assert caplog.records[0].exc_info is None
    assert "Traceback" not in capsys.readouterr().err
