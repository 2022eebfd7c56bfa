"""The tray app's wiring, offscreen: snapshots in, icon/menu/notifications out, config written."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtGui import QGuiApplication

from gpu_tray.app.config_loading import LoadedConfig
from gpu_tray.app.tray_app import TrayApp
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.sources.demo.scripted import scripted_probes
from tests.harness.scripted import gpu, host, write_cluster
from tests.ui.app_harness import CONFIG, Recording, open_menu, open_submenu, settle

A100 = "NVIDIA A100-SXM4-80GB"


def node3(*free: int, n: int = 4) -> HostSnapshot:
    gpus = []
    for i in range(n):
        if i in free:
            gpus.append(GpuSample(i, f"GPU-{i}", A100, 81920, 3, 0))
        else:
            proc = (GpuProcess(100 + i, "python", 40000, "a.very-long-username"),)
            gpus.append(GpuSample(i, f"GPU-{i}", A100, 81920, 40960, 97, processes=proc))
    return HostSnapshot("node3", HostState.OK, gpus=tuple(gpus))


def test_toggling_a_watch_writes_config_toml_and_keeps_comments(
    make_app, qtbot, tmp_path: Path
) -> None:
    app, _ = make_app()
    app.snapshot_arrived.emit(node3())
    qtbot.waitUntil(lambda: "node3" in app.latest)
    gpu2 = next(a for a in open_submenu(app, "node3").actions() if a.text().startswith("GPU 2 "))
    assert not gpu2.isChecked()
    gpu2.trigger()
    path = tmp_path / "config.toml"
    qtbot.waitUntil(lambda: "[[watch]]" in path.read_text(), timeout=5000)
    assert path.read_text() == CONFIG + '[[watch]]\nhost = "node3"\ngpu = 2\ncount = 1\n'
    qtbot.waitUntil(lambda: app.engine.specs == [WatchSpec(host="node3", gpu=2)])
    gpu2 = next(a for a in open_submenu(app, "node3").actions() if a.text().startswith("GPU 2 "))
    assert gpu2.isChecked()
    gpu2.trigger()  # and off again
    qtbot.waitUntil(lambda: app.engine.specs == [], timeout=5000)
    assert "[[watch]]" not in path.read_text()
    assert path.read_text().startswith(CONFIG)


def test_a_watch_that_cannot_be_saved_says_why(make_app, qtbot, tmp_path: Path) -> None:
    app, _ = make_app()
    path = tmp_path / "config.toml"
    path.write_text('poll_interval_s = "soon"\n')  # broken behind the app's back
    app.add_watch(WatchSpec())
    message = (
        f'Could not save the watch: {path}, line 1: poll_interval_s: must be a number, got "soon"'
    )
    qtbot.waitUntil(lambda: message in app.state().notes, timeout=5000)
    lines = [a.text() for a in open_menu(app).actions()[1:] if not a.isSeparator()]
    assert " ".join(lines[: lines.index("Watch")]) == message
    assert path.read_text() == 'poll_interval_s = "soon"\n'
    assert app.engine.specs == []


def test_demo_without_config_keeps_watches_for_this_run_only(make_app, tmp_path: Path) -> None:
    app, _ = make_app(config_text=None)
    assert app.loaded.notes == (
        "First run: this is the demo cluster.",
        f"Add your hosts in Settings… (they are saved to {tmp_path / 'none.toml'}).",
    )
    app.add_watch(WatchSpec(model="A100"))
    assert app.engine.specs == [WatchSpec(model="A100")]
    assert not (tmp_path / "none.toml").exists()
    watch = open_submenu(app, "Watch")
    assert watch.actions()[0].text() == "Demo: watches last until you quit"


def test_a_gpu_that_stays_free_gives_one_merged_notification(make_app, qtbot) -> None:
    app, rec = make_app(
        CONFIG + '[[watch]]\nhost = "node3"\ngpu = 2\n\n[[watch]]\nhost = "node3"\ncount = 2\n'
    )
    for snap in (node3(), node3(2), node3(1, 2), node3(1, 2), node3(1, 2), node3(1, 2)):
        app.snapshot_arrived.emit(snap)
    qtbot.waitUntil(lambda: len(rec.sent) == 1, timeout=5000)
    [note] = rec.sent
    assert note.summary == "2 GPUs free on node3"
    assert (
        note.body
        == "node3: GPU 2 (A100 80GB) is free, 79 GiB\nnode3: GPU 1 (A100 80GB) is free, 79 GiB"
    )
    assert note.actions == (
        ("default", "Copy command"),
        ("copy", "Copy command"),
        ("snooze", "Snooze 1 h"),
    )
    assert [f.spec for f in note.payload] == [
        WatchSpec(host="node3", gpu=2),
        WatchSpec(host="node3", count=2),
    ]
    # More polls of the same free period: nothing more.
    for _ in range(5):
        app.snapshot_arrived.emit(node3(1, 2))
    settle(app)
    assert len(rec.sent) == 1


def test_a_blip_never_notifies(make_app, qtbot) -> None:
    app, rec = make_app(CONFIG + '[[watch]]\nhost = "node3"\ngpu = 2\n')
    for snap in (node3(2), node3(), node3(2), node3(), node3(2), node3()):
        app.snapshot_arrived.emit(snap)
    settle(app)
    assert rec.sent == []


def test_notification_actions_copy_history_and_snooze(make_app, qtbot) -> None:
    app, rec = make_app(CONFIG + '[[watch]]\nhost = "node3"\ngpu = 2\n')
    opened = []
    app.set_history_handler(lambda: opened.append(True))
    for snap in (node3(2), node3(2)):
        app.snapshot_arrived.emit(snap)
    qtbot.waitUntil(lambda: len(rec.sent) == 1, timeout=5000)
    note = rec.sent[0]
    assert [key for key, _ in note.actions] == ["default", "copy", "history", "snooze"]

    # As the D-Bus listener does: from another thread, through the queued signal.
    def invoke(key: str) -> None:
        t = threading.Thread(target=app.notification_action.emit, args=(note, key))
        t.start()
        t.join()

    invoke("copy")
    command = "ssh -t node3 'export CUDA_VISIBLE_DEVICES=2; exec \"$SHELL\" -l'"
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == command)
    invoke("history")
    qtbot.waitUntil(lambda: opened == [True])
    invoke("snooze")
    key = WatchSpec(host="node3", gpu=2).key
    qtbot.waitUntil(lambda: app.engine.snoozed_until(key) is not None)
    # Snoozed: the next free period stays quiet.
    for snap in (node3(), node3(2), node3(2), node3(2)):
        app.snapshot_arrived.emit(snap)
    settle(app)
    assert len(rec.sent) == 1
    assert "snoozed until" in next(
        a.text()
        for a in open_submenu(app, "Watch").actions()
        if a.text().startswith("GPU 2 on node3")
    )


def test_icon_and_tooltip_follow_the_snapshots(make_app, qtbot) -> None:
    app, _ = make_app(CONFIG + '[[watch]]\nmodel = "H100"\n')
    app.snapshot_arrived.emit(node3(0, 1))
    qtbot.waitUntil(lambda: app.view.tooltip_text.startswith("gpu-tray: 2 of 4"))
    assert app.view.tooltip_text == "gpu-tray: 2 of 4 GPUs free on 1 host\nnode3: 2/4 free"
    # Free A100s, but the only rule wants an H100: amber.
    assert app.state().summary.colour == "amber"
    app.snapshot_arrived.emit(
        HostSnapshot(
            "node3",
            HostState.TIMEOUT,
            "No answer from node3 within 10 s",
            gpus=node3().gpus,
            stale=True,
            data_at=node3().polled_at,
        )
    )
    qtbot.waitUntil(lambda: "timeout" in app.view.tooltip_text)
    assert app.state().summary.colour == "grey"
    assert app.view.tooltip_text.splitlines()[1].startswith("node3: timeout, data ")


def test_without_a_system_tray_the_status_window_shows(make_app, qtbot) -> None:
    app, _ = make_app()
    # Offscreen Qt has no system tray.
    assert app.view.fallback
    assert app.view.window.isVisible()
    app.snapshot_arrived.emit(node3(3))
    qtbot.waitUntil(lambda: app.view.window.headline.text() == "1 of 4 GPUs free on 1 host")
    item = app.view.window.hosts.topLevelItem(0)
    assert (item.text(0), item.text(1)) == ("node3", "1/4 free")
    assert item.child(3).text(1) == "GPU 3 · A100 80GB · 0.0/80.0 GiB · 0% · free"
    # Quitting closes it (only the user's own close keeps it, minimised, when there is no tray).
    assert app.view.window.close()
    assert not app.view.window.isVisible()


def test_probes_poll_on_worker_threads_and_the_gui_sees_the_result(
    make_app, qtbot, tmp_path: Path
) -> None:
    cluster = tmp_path / "cluster.json"
    write_cluster(cluster, [host("node3", [gpu(0, True)])])
    [probe] = scripted_probes(cluster)
    polled_on: list[str] = []
    real_poll = probe.poll

    def poll():
        polled_on.append(threading.current_thread().name)
        return real_poll()

    probe.poll = poll
    shown: list[tuple[str, str]] = []
    loaded = LoadedConfig(Config(poll_interval_s=1.0, demo=True))
    app = TrayApp(loaded, [probe], notifier_chain=[("recording", Recording)])
    app.snapshot_shown.connect(
        lambda snap: shown.append((snap.state.value, threading.current_thread().name))
    )
    try:
        app.start()
        qtbot.waitUntil(lambda: ("ok", "MainThread") in shown, timeout=5000)
        assert polled_on and "MainThread" not in polled_on  # the network never on the GUI thread
    finally:
        app.stop()


def test_start_at_login_toggle_writes_the_autostart_entry(
    make_app, qtbot, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    app, _ = make_app()
    entry = tmp_path / "xdg" / "autostart" / "gpu-tray.desktop"
    app.set_autostart(True)
    qtbot.waitUntil(lambda: app.state().autostart is True, timeout=5000)
    assert "X-GNOME-Autostart-enabled=true" in entry.read_text()
    app.set_autostart(False)
    qtbot.waitUntil(lambda: app.state().autostart is False, timeout=5000)
    assert not entry.exists()
