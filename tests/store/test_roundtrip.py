"""What goes in comes back out: samples, MIG units, free counts, state changes, gaps."""

from __future__ import annotations

import math
from pathlib import Path

from gpu_tray.core.models import HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.store import HistoryReader, Recorder, open_store, plan_for
from gpu_tray.store.tiers import MINUTE, QUARTER, RAW

from .helpers import T0, down, gpu, mig_gpu, ok


def _recorder(path: Path, **kw) -> Recorder:
    return Recorder(open_store(path), clock=lambda: T0 + 10 * 86_400, **kw)


def test_samples_round_trip_with_unknowns_and_mig(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    snaps = [
        ok(
            "node1",
            T0 + 10 * k,
            gpu(0, util=90 + k, mem=40_000 + k, temp=70, busy=True),
            gpu(1, util=NA, mem=NA, temp=NA),
            mig_gpu(2, mems=[5000, 12], busy=[True, False]),
        )
        for k in range(6)
    ]
    assert rec.write(snaps) == 6
    data = HistoryReader(db).load_range(T0, T0 + 3600)
    assert data.plan.tier is RAW and data.plan.bucket_s is None
    host = data.hosts["node1"]
    labels = [s.unit.label for s in host.units]
    assert labels == ["GPU 0", "GPU 1", "GPU 2", "GPU 2 MIG 0 (1g.10gb)", "GPU 2 MIG 1 (1g.10gb)"]
    g0, g1, g2, m0, m1 = host.units
    assert g0.t == [T0 + 10 * k for k in range(6)]
    assert g0.util_mean == g0.util_max == [90.0 + k for k in range(6)]
    assert g0.mem_mean == [40_000.0 + k for k in range(6)]
    assert g0.temp_max == [70.0] * 6
    assert all(math.isnan(v) for v in g1.util_mean + g1.mem_mean + g1.temp_mean)
    assert all(math.isnan(v) for v in g2.util_mean) and g2.mem_mean == [5012.0] * 6
    assert m0.mem_mean == [5000.0] * 6 and all(math.isnan(v) for v in m0.util_mean)
    assert m1.mem_mean == [12.0] * 6
    assert (m0.unit.memory_total_mib, m0.unit.uuid, m0.unit.model) == (
        9984,
        "MIG-2-0",
        "NVIDIA H100 80GB HBM3",
    )
    # Free as the tray counts it: GPU 0 busy, GPU 1 unknown memory, MIG 0 busy, MIG 1 free.
    assert host.free.free_mean == [1.0] * 6
    assert host.free.total == [4.0] * 6


def test_free_counts_use_each_hosts_thresholds(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    limits = {
        "strict": FreeThresholds(max_memory_mib=100),
        "loose": FreeThresholds(max_memory_mib=2000),
    }
    rec = _recorder(db, thresholds_for=lambda h: limits[h])
    rec.write(
        [ok(h, T0, gpu(0, util=1, mem=1000), gpu(1, util=1, mem=50)) for h in ("strict", "loose")]
    )
    data = HistoryReader(db).load_range(T0, T0 + 60)
    assert data.hosts["strict"].free.free_mean == [1.0]
    assert data.hosts["loose"].free.free_mean == [2.0]


def test_state_changes_are_stored_once_and_down_polls_store_no_samples(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    snaps = [ok("n", T0 + 10 * k, gpu(0, util=50)) for k in range(3)]
    snaps += [down("n", T0 + 30 + 10 * k) for k in range(3)]
    snaps += [down("n", T0 + 60, HostState.AUTH_FAILED, "Wrong password for alice@n")]
    snaps += [ok("n", T0 + 70 + 10 * k, gpu(0, util=60)) for k in range(3)]
    rec.write(snaps)
    conn = rec.conn
    assert conn.execute("SELECT ts, state, message FROM host_states ORDER BY ts").fetchall() == [
        (T0, "ok", None),
        (T0 + 30, "timeout", "No answer from n within 10 s"),
        (T0 + 60, "auth_failed", "Wrong password for alice@n"),
        (T0 + 70, "ok", None),
    ]
    assert [r[0] for r in conn.execute("SELECT ts FROM samples ORDER BY ts")] == [
        T0,
        T0 + 10,
        T0 + 20,
        T0 + 70,
        T0 + 80,
        T0 + 90,
    ]
    # A reopened recorder remembers the last state: an unchanged state is not stored again.
    rec2 = Recorder(conn, clock=lambda: T0 + 86_400)
    rec2.write([ok("n", T0 + 100, gpu(0, util=60))])
    assert conn.execute("SELECT count(*) FROM host_states").fetchone()[0] == 4

    host = HistoryReader(db).load_range(T0, T0 + 3600).hosts["n"]
    # The down period is a gap: a NaN row where the host went down.
    u = host.units[0]
    assert u.t[:4] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert math.isnan(u.util_mean[3]) and u.util_mean[4] == 60.0
    assert [s.state for s in host.states] == ["ok", "timeout", "auth_failed", "ok"]


def test_a_long_silence_is_a_gap(tmp_path: Path) -> None:
    """The app was not running: no state change, just no polls. Still a gap, not a line."""
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    rec.write([ok("n", T0 + 10 * k, gpu(0, util=10 * k)) for k in range(10)])
    rec.write([ok("n", T0 + 2000 + 10 * k, gpu(0, util=5)) for k in range(10)])
    u = HistoryReader(db).load_range(T0, T0 + 3600).hosts["n"].units[0]
    nans = [t for t, v in zip(u.t, u.util_mean, strict=True) if math.isnan(v)]
    assert len(nans) == 1 and T0 + 90 < nans[0] < T0 + 2000
    assert len(u.t) == 21


def test_cluster_free_is_the_sum_of_hosts_held_until_their_next_poll(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    # a: 1 free at T0, T0+10, T0+20. b: 2 free at T0+5, T0+15, then down at T0+25.
    rec.write(
        [
            ok("a", T0, gpu(0), gpu(1, busy=True)),
            ok("b", T0 + 5, gpu(0), gpu(1)),
            ok("a", T0 + 10, gpu(0), gpu(1, busy=True)),
            ok("b", T0 + 15, gpu(0), gpu(1)),
            ok("a", T0 + 20, gpu(0), gpu(1, busy=True)),
            down("b", T0 + 25),
        ]
    )
    c = HistoryReader(db).load_range(T0, T0 + 3600).cluster
    points = list(zip(c.t, c.free_mean, c.total, strict=True))
    assert points[:6] == [
        (T0, 1.0, 2.0),
        (T0 + 5, 3.0, 4.0),
        (T0 + 10, 3.0, 4.0),
        (T0 + 15, 3.0, 4.0),
        (T0 + 20, 3.0, 4.0),
        (T0 + 25, 1.0, 2.0),  # b went down: it contributes nothing
    ]
    # Then a's last poll expires too: no data at all is a gap, not zero.
    assert math.isnan(points[-1][1])


def test_plans_for_the_window_ranges() -> None:
    """About 500 points per curve at most, from the finest tier that covers the range."""
    hour, day = 3600, 86_400
    assert (plan_for(hour).tier, plan_for(hour).bucket_s) == (RAW, None)
    assert (plan_for(6 * hour).tier, plan_for(6 * hour).bucket_s) == (RAW, 60)
    assert (plan_for(day).tier, plan_for(day).bucket_s) == (MINUTE, 180)
    assert (plan_for(7 * day).tier, plan_for(7 * day).bucket_s) == (QUARTER, 1800)
    assert (plan_for(30 * day).tier, plan_for(30 * day).bucket_s) == (QUARTER, 7200)
    assert (plan_for(365 * day).tier, plan_for(365 * day).bucket_s) == (QUARTER, 64800)


def test_reader_of_a_missing_file_returns_nothing_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nothing.sqlite3"
    r = HistoryReader(db)
    assert r.load_range(T0, T0 + 3600).hosts == {}
    assert r.hosts() == []
    assert not db.exists()


def test_a_range_without_lines_or_for_some_hosts_only(tmp_path: Path) -> None:
    """The window reads every host's free counts, but per-GPU lines only for open sections."""
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    rec.write(
        [
            ok(h, T0 + 10 * k, gpu(0, util=k), gpu(1, busy=True))
            for k in range(6)
            for h in ("a", "b")
        ]
    )
    r = HistoryReader(db)
    overview = r.load_range(T0, T0 + 3600, units=False)
    assert sorted(overview.hosts) == ["a", "b"]
    assert all(h.units == [] for h in overview.hosts.values())
    assert [g.label for g in overview.hosts["a"].gpus] == ["GPU 0", "GPU 1"]
    assert overview.hosts["b"].free.free_mean == [1.0] * 6
    # Hosts silent for the rest of the hour drop out of the cluster: a gap, not a value...
    assert math.isnan(overview.cluster.free_mean[-1])
    # ...but a range that ends just after the last polls ends on their sum.
    assert r.load_range(T0, T0 + 60, units=False).cluster.free_mean[-1] == 2.0
    some = r.load_range(T0, T0 + 3600, units=["b"])
    assert some.hosts["a"].units == [] and len(some.hosts["b"].units) == 2
    only_a = r.load_range(T0, T0 + 3600, ["a"])
    assert list(only_a.hosts) == ["a"] and only_a.hosts["a"].units[0].util_mean == list(range(6))


def test_raw_since_returns_only_newer_polls_with_their_values(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = _recorder(db)
    rec.write([ok("a", T0 + 10 * k, gpu(0, util=k)) for k in range(5)])
    rec.write([down("a", T0 + 50)])
    update = HistoryReader(db).raw_since(T0 + 20)
    assert [(p.host, p.ts, p.free, p.total) for p in update.points] == [
        ("a", T0 + 30, 1, 1),
        ("a", T0 + 40, 1, 1),
    ]
    uid = next(iter(update.points[0].values))
    assert update.units[uid].label == "GPU 0"
    assert update.points[1].values[uid] == (4, 0, 30)
    assert [(h, s.state) for h, s in update.states] == [("a", "timeout")]
    assert update.newest == T0 + 50
