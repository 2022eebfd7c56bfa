"""The history window on a seeded store (offscreen): it builds, ranges, hover, search, live data."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt

from gpu_tray.core.models import HostState
from gpu_tray.sources.demo.cluster import DemoCluster
from gpu_tray.store import HistoryReader, Recorder, open_store
from gpu_tray.store.tiers import plan_for
from gpu_tray.ui.history.colors import unit_colour
from gpu_tray.ui.history.window import RANGES, HistoryWindow

from .history_fixtures import NOW, NOW_TS, copy_of_demo, demo_db, open_window

ROOT = Path(__file__).resolve().parents[2]
DEMO_HOSTS = sorted(DemoCluster().host_names())


def test_window_builds_with_every_host_and_the_first_one_open(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    assert list(w.sections) == DEMO_HOSTS
    first, *rest = (w.sections[h] for h in DEMO_HOSTS)
    assert first.expanded and first.built
    assert not any(s.expanded or s.built for s in rest)
    # Every header says what the host has, even closed.
    assert "4 × NVIDIA A100-SXM4-80GB" in first.header.summary.text()
    assert "8 × NVIDIA H100 80GB HBM3" in w.sections["demo-h100"].header.summary.text()
    # The open section has a line per GPU per plot, with data.
    assert sorted(first.units) == [(0, -1), (1, -1), (2, -1), (3, -1)]
    for key in first.units:
        for metric in ("util", "mem", "temp"):
            x, _y = first.curves[(metric, key)].getData()
            assert x is not None and len(x) > 100
    assert w.cluster.free.t.size > 100
    assert w.status.text() == "Last 24 h: 3 min mean and max · 5 hosts"


def test_each_range_button_changes_the_x_range(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    for key, span in RANGES.items():
        with qtbot.waitSignal(w.range_loaded, timeout=60_000) as blocker:
            qtbot.mouseClick(w.range_buttons[key], Qt.MouseButton.LeftButton)
        assert blocker.args == [key]
        lo, hi = w.x_range()
        assert hi == pytest.approx(NOW_TS, abs=span * 0.02)
        assert hi - lo == pytest.approx(span, rel=0.02)
        # Every plot shows the same time range as the cluster plot.
        for plot in w.sections[DEMO_HOSTS[0]].plots.values():
            plo, phi = plot.getViewBox().viewRange()[0]
            assert (plo, phi) == pytest.approx((lo, hi))
        assert w.data is not None and w.data.plan == plan_for(span)


def test_opening_a_section_builds_it_and_loads_its_lines(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    h100 = w.sections["demo-h100"]
    assert not h100.built
    h100.set_expanded(True)
    w.scroll.ensureWidgetVisible(h100)
    qtbot.waitUntil(lambda: h100.built and len(h100.units) == 12, timeout=30_000)
    # MIG devices have memory lines only, in shades of their GPU's colour.
    assert ("mem", (7, 0)) in h100.curves and ("util", (7, 0)) not in h100.curves
    assert "GPU 7 MIG 0 (3g.40gb)" in h100.legend.text()


def test_hover_shows_the_time_and_every_gpus_value(qtbot) -> None:
    w = open_window(qtbot, demo_db(), key="1h")
    section = w.sections[DEMO_HOSTS[0]]
    plot = section.plots["util"]
    t = NOW_TS - 1800
    scene_pos = plot.getViewBox().mapViewToScene(QPointF(t, 50))
    section._mouse((scene_pos,))
    text = section.readout.text()
    assert "Mon 23 Nov 13:30" in text and "Utilisation:" in text
    for i in range(4):
        assert f"GPU {i}" in text
        assert unit_colour(i) in text
    # The values are the ones stored for the poll at or just before that time.
    buf = section.units[(0, -1)]
    i = max(k for k, x in enumerate(buf.t) if x <= t)
    assert f"GPU 0: {buf.v['util'][i]:.0f}%" in text
    assert all(line.isVisible() for line in section.lines)


def test_search_filters_hosts_and_opens_a_single_match(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    w.search.setText("H1")
    assert w.visible_hosts() == ["demo-h100"]
    assert w.sections["demo-h100"].expanded
    w.search.setText("demo-")
    assert w.visible_hosts() == DEMO_HOSTS
    w.search.setText("nothing-like-this")
    assert w.visible_hosts() == []


def test_reads_happen_off_the_gui_thread(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = HistoryReader.load_range

    def spy(self, *a, **kw):
        threads.append(threading.current_thread())
        return real(self, *a, **kw)

    monkeypatch.setattr(HistoryReader, "load_range", spy)
    open_window(qtbot, demo_db())
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_live_snapshots_are_appended_without_reading_the_range_again(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = open_window(qtbot, copy_of_demo(tmp_path), key="1h")
    calls = []
    monkeypatch.setattr(HistoryReader, "load_range", lambda *a, **k: calls.append(a))
    cluster = DemoCluster()
    section = w.sections["demo-a100"]
    n = section.free.t.size
    n_cluster = w.cluster.free.t.size
    later = [NOW.replace(minute=m) for m in (1, 2)]
    for when in later:
        for snap in cluster.snapshots_at(when):
            w.append_snapshot(snap)
    assert section.free.t.size == n + 2
    assert section.units[(0, -1)].t[-1] == later[-1].timestamp()
    snap = cluster.snapshot("demo-a100", later[-1])
    assert section.units[(0, -1)].v["util"][-1] == snap.gpus[0].utilization_pct
    assert w.cluster.free.t.size == n_cluster + 10
    # A host that stops answering: a gap in its lines, and the header says so.
    down = replace(
        cluster.snapshot("demo-a100", NOW.replace(minute=3)),
        state=HostState.TIMEOUT,
        message="No answer from demo-a100 within 10 s",
        stale=True,
    )
    w.append_snapshot(down)
    assert math.isnan(section.units[(0, -1)].v["util"][-1])
    assert math.isnan(section.free.free[-1])
    assert "down since" in section.header.summary.text()
    assert "No answer from demo-a100 within 10 s" in section.header.summary.text()
    # A host never seen before gets its own section.
    new = replace(cluster.snapshot("demo-l40s", NOW.replace(minute=4)), name="new-node")
    w.append_snapshot(new)
    assert "new-node" in w.sections and w.sections["new-node"].free.t.size == 1
    assert calls == []


def test_a_window_following_the_database_picks_up_new_polls(qtbot, tmp_path: Path) -> None:
    db = copy_of_demo(tmp_path)
    w = open_window(qtbot, db, key="1h", follow_db=True)
    section = w.sections["demo-a100"]
    n = section.free.t.size
    rec = Recorder(open_store(db), clock=lambda: NOW_TS + 3600)
    rec.write(DemoCluster().snapshots_at(NOW.replace(minute=5)))
    with qtbot.waitSignal(
        w.loader.finished, timeout=30_000, check_params_cb=lambda k, *_: k == "tail"
    ):
        w._follow()
    assert section.free.t.size == n + 1
    assert section.free.t[-1] == NOW.replace(minute=5).timestamp()


def test_an_empty_store_says_so(qtbot, tmp_path: Path) -> None:
    w = open_window(qtbot, tmp_path / "none.sqlite3")
    assert w.sections == {}
    assert w.empty.isVisible()
    assert w.empty.text() == "No history yet. It fills in as gpu-tray polls your hosts."
    assert not (tmp_path / "none.sqlite3").exists()


def test_an_unreadable_store_is_a_message_not_a_crash(qtbot, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"not a database at all" * 100)
    w = HistoryWindow(db, clock=lambda: NOW_TS)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.status.text().startswith("Could not read"), timeout=30_000)
    assert w.status.text() == "Could not read the history: DatabaseError: file is not a database"


def test_the_window_module_is_not_imported_at_start_up() -> None:
    """The tray must not pay for pyqtgraph at start-up: only opening the window imports it."""
    code = (
        "import sys, gpu_tray.cli.main, gpu_tray.cli.history, gpu_tray.store, gpu_tray.ui.history.colors;"
        "print(sorted(m for m in ('pyqtgraph', 'numpy', 'gpu_tray.ui.history.window') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_history_command_without_a_desktop_says_so() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gpu_tray", "history"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2
    assert out.stderr == (
        "gpu-tray: the history window needs a desktop session (DISPLAY or WAYLAND_DISPLAY)\n"
    )
