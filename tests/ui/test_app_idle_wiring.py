"""The tray reads idle stretches and GPU-hours from the history file on a worker, and
shows them (as `gpu-tray` wires it). Offscreen; no network."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from gpu_tray.app.wiring import wire
from gpu_tray.core.idle import iso_utc
from gpu_tray.core.models import GpuProcess, HostSnapshot, HostState
from gpu_tray.store import Recorder, open_store
from tests.store.helpers import at, ok
from tests.store.helpers import gpu as store_gpu

CONFIG = 'poll_interval_s = 5\n\n[[hosts]]\nname = "node3"\n'


def held(util: int):
    from dataclasses import replace

    g = store_gpu(0, util=util, mem=9000)
    return replace(g, processes=(GpuProcess(4242, "python", 9000, "alice.longname"),))


@pytest.fixture
def wired(make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GPU_TRAY_HISTORY", str(tmp_path / "history.sqlite3"))
    made = []

    def build():
        app, _ = make_app(CONFIG)
        wiring = wire(app, argparse.Namespace(config=str(tmp_path / "config.toml"), demo=False))
        made.append(wiring)
        return app, wiring

    yield build
    for w in made:
        w.stop()
    for widget in QApplication.topLevelWidgets():
        widget.close()


def test_the_tray_seeds_idle_since_and_gpu_hours_from_history(wired, qtbot, tmp_path) -> None:
    now = int(time.time())
    start = now - 40 * 60
    conn = open_store(tmp_path / "history.sqlite3")
    # 40 minutes of alice at 0 % before the app started, one poll a minute.
    Recorder(conn).write([ok("node3", start + 60 * m, held(0)) for m in range(40)])
    conn.close()

    app, wiring = wired()
    app.snapshot_arrived.emit(
        HostSnapshot("node3", HostState.OK, polled_at=at(now), gpus=(held(1),), data_at=at(now))
    )
    wiring.history.read_extras()
    qtbot.waitUntil(lambda: bool(app.state().idle_since), timeout=10000)
    st = app.state()
    assert {k: iso_utc(v) for k, v in st.idle_since.items()} == {("node3", 0, None): iso_utc(start)}
    [alice] = st.people
    # 39 polls after the first, 60 s each, held by alice: 39 GPU-minutes in the last day.
    assert (alice.user, alice.gpus_now, alice.idle_now, alice.idle_since) == (
        "alice.longname",
        1,
        1,
        start,
    )
    assert (alice.hours_day, alice.hours_week) == (39 / 60, 39 / 60)


def test_own_idle_gpu_reminder_through_the_app(make_app, tmp_path, qtbot, monkeypatch) -> None:
    """`[idle] remind_after_min`: "you" is the user SSH logs in as (here from
    ~/.ssh/config); one notification per idle stretch, with the ps command."""
    from tests.ui.app_harness import settle

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host node3\n  User alice.longname\n  Port 2222\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GPU_TRAY_HISTORY", str(tmp_path / "history.sqlite3"))
    config = CONFIG + "\n[idle]\nremind_after_min = 20\n"
    app, rec = make_app(config)
    wiring = wire(app, argparse.Namespace(config=str(tmp_path / "config.toml"), demo=False))
    try:
        qtbot.waitUntil(lambda: app.controller._own_users == {"node3": "alice.longname"})
        t0 = int(time.time()) - 3600
        for m in range(0, 41):  # idle 0..40 min: the reminder at minute 20, once
            snap = HostSnapshot(
                "node3",
                HostState.OK,
                polled_at=at(t0 + 60 * m),
                gpus=(held(0),),
                data_at=at(t0 + 60 * m),
            )
            app.snapshot_arrived.emit(snap)
        settle(app)
        assert [(n.summary, n.body) for n in rec.sent] == [
            (
                "Your GPU on node3 is idle",
                "node3: your GPU 0 has been idle for 20 min\n"
                "See it: ssh node3 ps -o pid,etime,args -p 4242",
            )
        ]
        assert rec.sent[0].payload[0].payload()["idle_since"] == iso_utc(t0)
    finally:
        wiring.stop()
