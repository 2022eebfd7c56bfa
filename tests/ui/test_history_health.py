"""Host health in the history window: load, RAM % and disk % per path for each host,
read with its GPU lines, hovered, and appended live."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QPointF

from gpu_tray.core.models import HostState
from gpu_tray.sources.demo.cluster import DemoCluster
from gpu_tray.store import HistoryReader

from .history_fixtures import NOW, NOW_TS, copy_of_demo, demo_db, open_window


def test_each_open_host_plots_load_ram_and_every_disk(qtbot) -> None:
    w = open_window(qtbot, demo_db(), key="1h")
    section = w.sections["demo-a100"]
    assert section.built
    hb = section.health
    assert list(hb.disks) == ["/", "/home"]
    # The buffers hold what the reader returns for the same range, value for value.
    data = HistoryReader(demo_db()).load_range(NOW_TS - 3600, NOW_TS + 1, ["demo-a100"])
    stored = data.hosts["demo-a100"]
    assert hb.load.t.tolist() == stored.health.t and len(stored.health.t) > 50
    assert hb.load.mean.tolist() == stored.health.load_mean
    assert hb.ram.mean.tolist() == stored.health.mem_pct_mean
    assert hb.disks["/home"].mean.tolist() == stored.disks[1].pct_mean
    curves = section.health_curves
    assert curves is not None
    x, _y = curves.ram.getData()
    assert x is not None and len(x) == len(stored.health.t)
    assert sorted(curves.disks) == ["/", "/home"]
    assert section.plots["load"].titleLabel.text == "Load (CPUs dashed)"
    assert section.plots["usage"].titleLabel.text == "RAM and disks used (%)"
    legend = section.legend.text()
    assert "load" in legend and "RAM" in legend and "/home" in legend
    # demo-rtx4090's /home is over 90 %: its line sits above the limit line.
    rtx = w.sections["demo-rtx4090"]
    w.search.setText("rtx")  # a single match opens
    qtbot.waitUntil(lambda: rtx.built and rtx.health.load.t.size > 0, timeout=30_000)
    assert float(rtx.health.disks["/home"].mean[-1]) > 90


def test_hovering_the_usage_plot_reads_out_ram_and_disks(qtbot) -> None:
    w = open_window(qtbot, demo_db(), key="1h")
    section = w.sections["demo-a100"]
    plot = section.plots["usage"]
    t = NOW_TS - 1800
    section._mouse((plot.getViewBox().mapViewToScene(QPointF(t, 50)),))
    text = section.readout.text()
    hb = section.health
    i = max(k for k, x in enumerate(hb.ram.t) if x <= t)
    assert "Mon 23 Nov 13:" in text
    assert f"RAM: <b>{hb.ram.mean[i]:.0f}%</b>" in text
    assert f"/home: <b>{hb.disks['/home'].mean[i]:.0f}%</b>" in text
    load_plot = section.plots["load"]
    section._mouse((load_plot.getViewBox().mapViewToScene(QPointF(t, 1)),))
    assert f"load: <b>{hb.load.mean[i]:.2f}</b> on 128 CPUs" in section.readout.text()


def test_live_polls_add_health_points_and_gaps(qtbot, tmp_path: Path) -> None:
    w = open_window(qtbot, copy_of_demo(tmp_path), key="1h")
    section = w.sections["demo-a100"]
    n = section.health.load.t.size
    snap = DemoCluster().snapshot("demo-a100", NOW.replace(minute=1))
    w.append_snapshot(snap)
    assert section.health.load.t.size == n + 1
    assert snap.health is not None
    assert section.health.load.mean[-1] == snap.health.load1
    assert section.health.ram.mean[-1] == snap.health.mem_pct
    assert section.health.disks["/home"].mean[-1] == snap.health.disks[1].used_pct
    # nvidia-smi failing: the GPUs break, the host's health is still drawn.
    failing = replace(
        DemoCluster().snapshot("demo-a100", NOW.replace(minute=2)),
        state=HostState.NVIDIA_SMI_ERROR,
        message="nvidia-smi failed (exit 18): Failed to initialize NVML",
        gpus=(),
    )
    w.append_snapshot(failing)
    assert failing.health is not None
    assert section.health.load.mean[-1] == failing.health.load1
    # Unreachable (stale GPUs, no health of its own): a gap.
    down = replace(failing, state=HostState.TIMEOUT, stale=True, polled_at=NOW.replace(minute=3))
    w.append_snapshot(down)
    assert math.isnan(section.health.load.mean[-1]) and math.isnan(section.health.ram.mean[-1])


def test_a_window_following_the_database_picks_up_health(qtbot, tmp_path: Path) -> None:
    from gpu_tray.store import Recorder, open_store

    db = copy_of_demo(tmp_path)
    w = open_window(qtbot, db, key="1h", follow_db=True)
    section = w.sections["demo-a100"]
    n = section.health.load.t.size
    when = NOW.replace(minute=5)
    rec = Recorder(open_store(db), clock=lambda: NOW_TS + 3600)
    rec.write(DemoCluster().snapshots_at(when))
    with qtbot.waitSignal(
        w.loader.finished, timeout=30_000, check_params_cb=lambda k, *_: k == "tail"
    ):
        w._follow()
    h = DemoCluster().snapshot("demo-a100", when).health
    assert h is not None
    assert section.health.load.t.size == n + 1 and section.health.load.t[-1] == when.timestamp()
    assert section.health.load.mean[-1] == h.load1
    assert section.health.ram.mean[-1] == h.mem_pct
    assert section.health.disks["/home"].mean[-1] == h.disks[1].used_pct
