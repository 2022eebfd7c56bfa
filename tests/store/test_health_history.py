"""Host health in the history: the upgrade from schema 2 with data in it (nothing lost, a
backup first), what the recorder stores, the rollups, retention, and the reader's values."""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from gpu_tray.core.models import DiskUsage, HostHealth, HostSnapshot, HostState
from gpu_tray.store import HistoryReader, Recorder, open_store
from gpu_tray.store.schema import SCHEMA_VERSION, V1, V2

from .helpers import DAY, HOUR, T0, at, down, gpu, ok, table

V2_TABLES = (
    "hosts",
    "units",
    "samples",
    "host_samples",
    "host_states",
    "samples_1m",
    "samples_15m",
    "host_1m",
    "host_15m",
    "rollup_state",
)
HEALTH_TABLES = (
    "health_samples",
    "disks",
    "disk_samples",
    "health_1m",
    "health_15m",
    "disk_1m",
    "disk_15m",
)


def health(
    load: float = 1.5,
    mem_used: int = 1024,
    root_used: int = 300,
    home_used: int | None = 950,
) -> HostHealth:
    disks = [DiskUsage("/", 1000, root_used, 650 - (root_used - 300))]
    home = DiskUsage("/home", 1000, home_used, 1000 - home_used) if home_used else None
    disks.append(home or DiskUsage("/home"))  # None: df failed there this time
    disks.append(DiskUsage("/gone"))  # a missing path: unknown, never stored
    return HostHealth(
        load1=load,
        load5=load,
        load15=load,
        cpus=16,
        mem_total_mib=4096,
        mem_used_mib=mem_used,
        disks=tuple(disks),
    )


def with_health(snap: HostSnapshot, h: HostHealth | None) -> HostSnapshot:
    return replace(snap, health=h)


def v2_database(path: Path) -> dict[str, list[tuple]]:
    """A schema-2 file as the previous gpu-tray wrote it: raw polls, rollups, states."""
    conn = sqlite3.connect(path)
    for statement in (*V1, *V2):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO hosts VALUES (1, 'old-node')")
    conn.execute("INSERT INTO units VALUES (1, 1, 0, NULL, 'GPU-a', 'Tesla V100', NULL, 16384)")
    for k in range(240):  # 2 h of polls every 30 s
        ts = T0 + 30 * k
        conn.execute("INSERT INTO samples VALUES (?, 1, ?, ?, ?)", (ts, k % 101, 1000 + k, 40))
        conn.execute("INSERT INTO host_samples VALUES (?, 1, ?, 1)", (ts, k % 2))
    conn.execute("INSERT INTO host_states VALUES (1, ?, 'ok', NULL)", (T0,))
    conn.execute("INSERT INTO samples_1m VALUES (?, 1, 50, 100, 1000, 1001, 40, 40)", (T0,))
    conn.execute("INSERT INTO host_1m VALUES (?, 1, 2, 1, 1, 1, 1)", (T0,))
    conn.execute("INSERT INTO rollup_state VALUES ('1m', ?)", (T0 + 60,))
    conn.commit()
    rows = {t: sorted(conn.execute(f"SELECT * FROM {t}")) for t in V2_TABLES}
    conn.close()
    return rows


def test_upgrade_from_schema_2_keeps_everything_and_adds_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "history.sqlite3"
    before = v2_database(db)
    caplog.set_level(logging.INFO, "gpu_tray.store")
    conn = open_store(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    backup = tmp_path / "history.sqlite3.v2.bak"
    assert f"backed up {db} (schema 2) to {backup} before upgrading" in caplog.messages
    assert f"history database {db} is now at schema 4" in caplog.messages
    old = sqlite3.connect(backup)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 2
    for t in V2_TABLES:  # nothing lost, nothing changed: in the file and in its backup
        assert sorted(conn.execute(f"SELECT * FROM {t}")) == before[t], t
        assert sorted(old.execute(f"SELECT * FROM {t}")) == before[t], t
    for t in HEALTH_TABLES:
        assert conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0, t

    # The upgraded file takes health, and the old GPU data still reads back.
    rec = Recorder(conn, clock=lambda: T0 + 2 * HOUR)
    rec.write([with_health(ok("old-node", T0 + 2 * HOUR, gpu(0, util=5, mem=7)), health())])
    data = HistoryReader(db).load_range(T0, T0 + 2 * HOUR + 1)
    h = data.hosts["old-node"]
    assert h.units[0].util_mean[:3] == [0.0, 1.0, 2.0]
    assert h.health.t[-1] == T0 + 2 * HOUR and h.health.load_mean[-1] == 1.5
    assert [d.path for d in h.disks] == ["/", "/home"]


def test_reader_returns_exact_values_per_poll(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = Recorder(open_store(db), clock=lambda: T0 + HOUR)
    rec.write(
        [
            with_health(ok("n", T0 + 10, gpu(0)), health(2.0, 1024, 300, 950)),
            # nvidia-smi failing: the GPUs are not stored, the host's health is.
            with_health(
                HostSnapshot("n", HostState.NVIDIA_SMI_ERROR, "nvidia-smi failed", at(T0 + 20)),
                health(4.0, 3891, 325, 990),
            ),
            with_health(ok("n", T0 + 30, gpu(0)), health(3.0, 2048, 350, None)),
            ok("quiet", T0 + 30, gpu(0)),  # another source, no health: nothing to show
        ]
    )
    data = HistoryReader(db).load_range(T0, T0 + 60)
    assert data.plan.bucket_s is None  # every poll
    hs = data.hosts["n"].health
    assert hs.t == [T0 + 10, T0 + 20, T0 + 30]
    assert hs.load_mean == hs.load_max == [2.0, 4.0, 3.0]
    assert hs.cpus == [16, 16, 16]
    assert hs.mem_pct_mean == [25.0, 3891 * 100 / 4096, 50.0]
    root, home = data.hosts["n"].disks
    assert (root.path, root.t) == ("/", [T0 + 10, T0 + 20, T0 + 30])
    # df's Capacity: used / (used + available); root's reserve (50 MiB here) is neither.
    assert root.pct_mean == pytest.approx([100 * 300 / 950, 100 * 325 / 950, 100 * 350 / 950])
    assert root.total_mib == [1000, 1000, 1000]
    assert (home.path, home.t) == ("/home", [T0 + 10, T0 + 20])  # unknown at T0 + 30
    assert home.pct_mean == [95.0, 99.0]
    assert data.hosts["quiet"].health.t == [] and data.hosts["quiet"].disks == []
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT path FROM disks ORDER BY id")] == ["/", "/home"]
    # Only the series a window asks for: none here.
    assert HistoryReader(db).load_range(T0, T0 + 60, units=False).hosts["n"].health.t == []


def test_a_host_that_stops_answering_leaves_a_gap(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = Recorder(open_store(db), clock=lambda: T0 + HOUR)
    snaps = [with_health(ok("n", T0 + 10 * k, gpu(0)), health(float(k))) for k in range(1, 6)]
    snaps.append(down("n", T0 + 60))  # no health while unreachable
    snaps += [with_health(ok("n", T0 + 600 + 10 * k, gpu(0)), health(9.0)) for k in range(3)]
    rec.write(snaps)
    hs = HistoryReader(db).load_range(T0, T0 + 700).hosts["n"].health
    assert hs.t == [T0 + 10, T0 + 20, T0 + 30, T0 + 40, T0 + 50, T0 + 60, T0 + 600, T0 + 610,
                    T0 + 620]  # fmt: skip
    assert hs.load_mean[:5] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert math.isnan(hs.load_mean[5])  # the gap: the line breaks
    assert hs.load_mean[6:] == [9.0, 9.0, 9.0]


def brute(rows: list[tuple[int, float, float]], step: int) -> dict[int, tuple[float, float]]:
    groups: dict[int, list[float]] = defaultdict(list)
    for ts, value, _ in rows:
        groups[ts - ts % step].append(value)
    return {b: (sum(v) / len(v), max(v)) for b, v in groups.items()}


def test_rollups_and_retention_follow_the_gpu_series(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    conn = open_store(db)
    polls = [T0 + 20 * k for k in range(3 * 24 * 180)]  # 3 days, every 20 s
    now = polls[-1]
    rec = Recorder(conn, clock=lambda: now)
    expected_load, expected_mem, expected_root = [], [], []
    batch = []
    for k, ts in enumerate(polls):
        load, mem, root = (k % 17) / 4, 1000 + (k * 37) % 3000, 300 + k % 50
        expected_load.append((ts, load, load))
        expected_mem.append((ts, mem * 100 / 4096, 0))
        expected_root.append((ts, root * 100 / 950, 0))
        batch.append(with_health(ok("n", ts, gpu(0)), health(load, mem, root, 900)))
        if len(batch) == 500:
            rec.write(batch)
            batch = []
            rec.maintain()
    rec.write(batch)
    rec.maintain()
    done = dict(conn.execute("SELECT tier, done_until FROM rollup_state"))
    for step, tier in ((60, "1m"), (900, "15m")):
        got = table(conn, f"health_{tier}")
        want_load = brute(expected_load, step)
        want_mem = brute(expected_mem, step)
        buckets = sorted(b for b in want_load if b < done[tier])
        assert sorted(b for b, _ in got) == buckets
        for b in buckets:
            load_mean, load_max, cpus, mem_mean, mem_max, mem_total = got[(b, 1)]
            assert load_mean == pytest.approx(want_load[b][0])
            assert load_max == want_load[b][1]
            assert (cpus, mem_total) == (16, 4096)
            assert mem_mean == pytest.approx(want_mem[b][0])
            assert mem_max == pytest.approx(want_mem[b][1])
        disk = table(conn, f"disk_{tier}")
        want_root = brute(expected_root, step)
        root_id = conn.execute("SELECT id FROM disks WHERE path = '/'").fetchone()[0]
        for b in buckets:
            pct_mean, pct_max, total = disk[(b, root_id)]
            assert (pct_mean, pct_max, total) == (
                pytest.approx(want_root[b][0]),
                pytest.approx(want_root[b][1]),
                1000,
            )
    # Raw health goes with raw GPU samples: after 48 h, and only once rolled up.
    raw_min = conn.execute("SELECT min(ts) FROM samples").fetchone()[0]
    assert conn.execute("SELECT min(ts) FROM health_samples").fetchone()[0] == raw_min
    assert conn.execute("SELECT min(ts) FROM disk_samples").fetchone()[0] == raw_min
    assert raw_min >= now - 48 * HOUR

    # A week read back from the 15-minute tier: 30-minute buckets of the rollups.
    data = HistoryReader(db).load_range(now - 7 * DAY, now + 1)
    assert (data.plan.tier.name, data.plan.bucket_s) == ("15m", 1800)
    hs = data.hosts["n"].health
    first = hs.t[0]
    assert first == T0
    in_first = [v for ts, v, _ in expected_load if T0 <= ts < T0 + 1800]
    assert hs.load_max[0] == max(in_first)
    q = [brute(expected_load, 900)[T0 + 900 * i][0] for i in (0, 1)]
    assert hs.load_mean[0] == pytest.approx(sum(q) / 2)  # the mean of the two 15-min means
