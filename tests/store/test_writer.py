"""The writer thread: submit never blocks, batches commit together, demo backfill."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gpu_tray.core.settings import FreeThresholds
from gpu_tray.sources.demo.cluster import DemoCluster
from gpu_tray.store import HistoryReader, HistoryWriter, open_store
from gpu_tray.store.demo_history import demo_history

from .helpers import T0, gpu, ok

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # a Monday afternoon


def test_submit_drops_and_counts_when_the_queue_is_full(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h.sqlite3", max_queue=10)  # not started: nothing drains
    for k in range(100):
        w.submit(ok("n", T0 + k, gpu(0)))
    assert w.dropped == 90


def test_snapshots_are_written_in_batches(tmp_path: Path) -> None:
    batches: list[int] = []
    w = HistoryWriter(
        tmp_path / "h.sqlite3", linger_s=0.05, on_commit=lambda s: batches.append(len(s))
    )
    # Everything is queued before the thread starts: it must not take one transaction each.
    for k in range(500):
        w.submit(ok(f"n{k % 5}", T0 + k, gpu(0, util=k % 100), gpu(1)))
    w.start()
    assert w.flush(timeout=60)
    w.stop()
    assert sum(batches) == 500 and len(batches) < 10
    assert w.written == 500
    data = HistoryReader(tmp_path / "h.sqlite3").load_range(T0, T0 + 3600)
    assert sorted(data.hosts) == ["n0", "n1", "n2", "n3", "n4"]
    assert len(data.hosts["n0"].units[0].t) == 100


def test_stop_writes_what_is_queued(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h.sqlite3", linger_s=5.0)
    w.start()
    for k in range(20):
        w.submit(ok("n", T0 + k, gpu(0)))
    w.stop()
    conn = open_store(tmp_path / "h.sqlite3")
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 20


def test_new_thresholds_apply_from_the_next_batch(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h.sqlite3", linger_s=0.01)
    w.start()
    w.submit(ok("n", T0, gpu(0, util=1, mem=1000)))
    assert w.flush(timeout=30)
    w.set_thresholds(lambda _h: FreeThresholds(max_memory_mib=2000))
    w.submit(ok("n", T0 + 10, gpu(0, util=1, mem=1000)))
    assert w.flush(timeout=30)
    w.stop()
    free = HistoryReader(tmp_path / "h.sqlite3").load_range(T0, T0 + 60).hosts["n"].free
    assert free.free_mean == [0.0, 1.0]


def test_demo_backfill_fills_a_week_once(tmp_path: Path) -> None:
    db = tmp_path / "history-demo.sqlite3"
    w = HistoryWriter(db, backfill=lambda: demo_history(NOW), clock=NOW.timestamp)
    w.start()
    assert w.flush(timeout=120)
    w.stop()
    end = NOW.timestamp()
    reader = HistoryReader(db)
    week = reader.load_range(end - 7 * 86_400, end)
    assert sorted(week.hosts) == sorted(DemoCluster().host_names())
    a100 = week.hosts["demo-a100"].units[0]
    assert a100.t[0] < end - 6.9 * 86_400 and a100.t[-1] > end - 3600
    conn = open_store(db)
    oldest_raw = conn.execute("SELECT min(ts) FROM samples").fetchone()[0]
    assert oldest_raw >= end - 48 * 3600 - 120
    assert conn.execute("SELECT min(ts) FROM samples_15m").fetchone()[0] <= end - 6.9 * 86_400
    # The flaky host's outages are in the history.
    assert any(s.state == "timeout" for s in week.hosts["demo-flaky"].states)
    heat = reader.heatmap("demo-a100", end - 28 * 86_400, end)
    assert sum(1 for row in heat.fraction for v in row if v is not None) == 7 * 24
    conn.close()

    # A second start finds history and leaves it alone.
    called = []
    w2 = HistoryWriter(db, backfill=lambda: called.append(1) or [], clock=NOW.timestamp)
    w2.start()
    assert w2.flush(timeout=30)
    w2.stop()
    assert called == []
