"""Schema 3's holds: the migration, what the recorder writes, and what is read back
(idle samples, GPU-hours per user checked against a brute-force count)."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from gpu_tray.core.idle import IdleSettings, idle_since, iso_utc
from gpu_tray.core.models import GpuProcess, HostState
from gpu_tray.store import Recorder, open_store
from gpu_tray.store.holders import free_quarters, gpu_hours, idle_samples, open_read_only
from gpu_tray.store.schema import V1, V2
from tests.idle.traces import BLIP, BUSY, IDLE, snapshots

from .helpers import DAY, T0, down, gpu, mig_gpu, ok


def _v2_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in (*V1, *V2):
        conn.execute(statement)
    conn.execute("INSERT INTO hosts VALUES (1, 'old-node')")
    conn.execute("INSERT INTO units VALUES (1, 1, 0, NULL, 'GPU-a', 'Tesla V100', NULL, 16384)")
    conn.executemany(
        "INSERT INTO samples VALUES (?, 1, 3, 100, 40)", [(T0 + 10 * k,) for k in range(50)]
    )
    conn.executemany(
        "INSERT INTO host_samples VALUES (?, 1, 0, 1)", [(T0 + 10 * k,) for k in range(50)]
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def test_upgrade_from_v2_backs_up_keeps_samples_and_adds_holds(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    _v2_database(db)
    conn = open_store(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    backup = sqlite3.connect(tmp_path / "history.sqlite3.v2.bak")
    assert backup.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 50
    assert conn.execute("SELECT count(*) FROM holds").fetchone()[0] == 0
    # The next poll of the old host counts dt from its last stored poll (T0 + 490).
    Recorder(conn).write([ok("old-node", T0 + 500, gpu(0, util=90, busy=True))])
    assert conn.execute("SELECT * FROM holds").fetchall() == [
        (T0 + 500, 1, "a.very-long-username", 1, 10)
    ]


def test_recorder_writes_one_row_per_user_with_dt(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn)
    shared = gpu(0, util=50, mem=9000)
    from dataclasses import replace

    shared = replace(
        shared,
        processes=(
            GpuProcess(1, "a", 10, "alice"),
            GpuProcess(2, "b", 10, "alice"),
            GpuProcess(3, "c", 10, None),
            GpuProcess(4, "d", 10, "bob"),
        ),
    )
    rec.write([ok("n1", T0, shared, gpu(1))])
    rec.write([down("n1", T0 + 10)])  # a failed poll: no rows, and dt spans it
    rec.write([ok("n1", T0 + 20, shared, gpu(1))])
    rec.write([ok("n1", T0 + 2000, mig_gpu(0, [100, 0], [True, False]), gpu(1))])
    rows = conn.execute(
        "SELECT h.ts, u.gpu_index, u.mig_index, h.user, h.procs, h.dt FROM holds AS h "
        "JOIN units AS u ON u.id = h.unit_id ORDER BY h.ts, u.gpu_index, h.user"
    ).fetchall()
    assert rows == [
        (T0, 0, None, "", 1, 0),
        (T0, 0, None, "alice", 2, 0),
        (T0, 0, None, "bob", 1, 0),
        (T0 + 20, 0, None, "", 1, 20),
        (T0 + 20, 0, None, "alice", 2, 20),
        (T0 + 20, 0, None, "bob", 1, 20),
        (T0 + 2000, 0, 0, "jdoe", 1, 600),  # capped at MAX_GAP_S
    ]


@pytest.mark.parametrize(
    ("trace", "expected"),
    [(IDLE, "2026-11-23T09:00:00Z"), (BLIP, "2026-11-23T09:21:00Z"), (BUSY, None)],
)
def test_idle_since_from_the_store_matches_the_trace(tmp_path: Path, trace, expected) -> None:
    conn = open_store(tmp_path / "h.sqlite3")
    snaps = snapshots(trace)
    Recorder(conn, clock=lambda: snaps[-1].polled_at.timestamp()).write(snaps)
    ro = open_read_only(tmp_path / "h.sqlite3")
    assert ro is not None
    got = idle_samples(ro, snaps[0].polled_at.timestamp())
    assert list(got) == [("gpu-node1", 0, None)]
    assert iso_utc(idle_since(got[("gpu-node1", 0, None)], IdleSettings())) == expected


def test_read_only_refuses_missing_foreign_old_and_damaged_files(tmp_path: Path) -> None:
    assert open_read_only(tmp_path / "none.sqlite3") is None
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    assert open_read_only(junk) is None
    old = tmp_path / "old.sqlite3"
    _v2_database(old)
    assert open_read_only(old) is None
    assert sqlite3.connect(old).execute("PRAGMA user_version").fetchone()[0] == 2  # untouched


def _history(seed: int):
    """Two hosts over two days: irregular polls, outages, users coming and going."""
    rnd = random.Random(seed)
    users = ["alice", "bob", "a.very-long-username", None]
    snaps = []
    for host in ("n1", "n2"):
        t = T0
        while t < T0 + 2 * DAY:
            t += rnd.choice((10, 10, 10, 30, 60, 900))  # 900: a gap past MAX_GAP_S
            if rnd.random() < 0.03:
                snaps.append(down(host, t, HostState.UNREACHABLE, "refused"))
                continue
            gpus = []
            for i in range(3):
                held = rnd.sample(users, rnd.choice((0, 0, 1, 2)))
                g = gpu(i, util=rnd.randint(0, 100), mem=5000 if held else 0)
                from dataclasses import replace

                g = replace(
                    g, processes=tuple(GpuProcess(100 + k, "p", 10, u) for k, u in enumerate(held))
                )
                gpus.append(g)
            snaps.append(ok(host, t, *gpus))
    snaps.sort(key=lambda s: s.polled_at)
    return snaps


def brute_gpu_hours(snaps, t0: float, t1: float) -> dict[str, float]:
    """By hand: every answered poll after a host's first stands for the time since its
    previous answered poll (at most 600 s), once per (GPU, user) holding it."""
    seconds: dict[str, float] = defaultdict(float)
    last: dict[str, float] = {}
    for s in snaps:
        if s.state is not HostState.OK:
            continue
        ts = s.polled_at.timestamp()
        dt = min(ts - last[s.name], 600) if s.name in last else 0
        last[s.name] = ts
        if not t0 <= ts < t1:
            continue
        for g in s.gpus:
            for user in {p.user or "" for p in g.processes}:
                seconds[user] += dt
    return {u: v / 3600 for u, v in seconds.items()}


def test_gpu_hours_match_a_brute_force_count(tmp_path: Path) -> None:
    snaps = _history(7)
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn, clock=lambda: T0 + 2 * DAY)
    for k in range(0, len(snaps), 50):
        rec.write(snaps[k : k + 50])
    for t0, t1 in ((T0, T0 + 2 * DAY), (T0 + DAY, T0 + 2 * DAY), (T0 + 3600, T0 + 7200)):
        want = brute_gpu_hours(snaps, t0, t1)
        got = gpu_hours(conn, t0, t1)
        assert set(got) == set(want)
        for user in want:
            assert got[user] == pytest.approx(want[user], abs=1e-9)
    assert set(want) == {"alice", "bob", "a.very-long-username", ""}


def test_holds_are_kept_eight_days(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "h.sqlite3")
    now = T0 + 10 * DAY
    rec = Recorder(conn, clock=lambda: now)
    rec.write([ok("n1", T0 + d * DAY, gpu(0, busy=True)) for d in range(11)])
    rec.maintain()
    kept = [r[0] for r in conn.execute("SELECT ts FROM holds ORDER BY ts")]
    assert kept == [T0 + d * DAY for d in range(2, 11)]


def test_free_quarters_come_from_the_15_minute_tier(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn, clock=lambda: T0 + DAY)
    rec.write([ok("n1", T0 + 60 * m, gpu(0, busy=m >= 15)) for m in range(0, 31)])
    rec.write([ok("n1", T0 + DAY, gpu(0))])
    rec.maintain()
    assert free_quarters(conn, "n1", T0, T0 + DAY) == [
        (T0, True),
        (T0 + 900, False),
        (T0 + 1800, False),
    ]


def test_people_view_numbers_match_a_brute_force_count(tmp_path: Path) -> None:
    from gpu_tray.core.people import UNKNOWN_USER, people
    from gpu_tray.store.holder_views import tray_extras

    snaps = _history(11)
    db = tmp_path / "h.sqlite3"
    conn = open_store(db)
    end = T0 + 2 * DAY
    rec = Recorder(conn, clock=lambda: end)
    rec.write(snaps)
    conn.close()
    now = max(s.polled_at.timestamp() for s in snaps)
    extras = tray_extras(db, ["n1", "n2"], now, with_samples=False)
    latest = {}
    for s in snaps:
        if s.state is HostState.OK:
            latest[s.name] = s
    rows = people(latest.values(), {}, extras.hours_day, extras.hours_week)

    # By hand: GPUs each user holds in each host's last answered poll, and GPU-hours.
    gpus_now: dict[str, int] = defaultdict(int)
    for s in latest.values():
        for g in s.gpus:
            for user in {p.user or UNKNOWN_USER for p in g.processes}:
                gpus_now[user] += 1
    day = brute_gpu_hours(snaps, now - DAY, now + 1)
    week = brute_gpu_hours(snaps, now - 7 * DAY, now + 1)
    name = {"": UNKNOWN_USER}
    want = {
        u: (gpus_now.get(u, 0), day.get(k, 0.0), week.get(k, 0.0))
        for k in set(day) | set(week)
        for u in [name.get(k, k)]
    }
    got = {p.user: (p.gpus_now, p.hours_day, p.hours_week) for p in rows}
    assert set(got) == set(want)
    for user, (n, d, w) in want.items():
        assert got[user][0] == n
        assert got[user][1] == pytest.approx(d, abs=1e-9)
        assert got[user][2] == pytest.approx(w, abs=1e-9)
    assert [p.gpus_now for p in rows] == sorted((p.gpus_now for p in rows), reverse=True)


def test_people_view_from_history_alone(tmp_path: Path) -> None:
    from gpu_tray.core.people import Person
    from gpu_tray.store.holder_views import people_view

    snaps = snapshots(IDLE) + snapshots(BUSY, host="gpu-node2")
    db = tmp_path / "h.sqlite3"
    conn = open_store(db)
    end = max(s.polled_at.timestamp() for s in snaps)
    Recorder(conn, clock=lambda: end).write(snaps)
    conn.close()
    t0 = snaps[0].polled_at.timestamp()
    view = people_view(db, end, IdleSettings())
    assert view.as_of == end == t0 + 60 * 60  # BUSY runs to minute 60
    # gpu-node1's newest poll is minute 45: alice still holds it there, idle since 09:00.
    # Polls after the first, 60 s each: 45 on gpu-node1 and 60 on gpu-node2: 105 GPU-minutes.
    assert view.people == [Person("alice.longname", 2, 1, t0, 1.75, 1.75)]
    assert view.stretches == {("gpu-node1", 0, None): [(t0, t0 + 45 * 60)]}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_trailing_stretches_give_the_same_idle_since_as_the_whole_history(
    tmp_path: Path, seed: int
) -> None:
    """status and the tray read only each unit's trailing stretch, newest first; the
    answer must be the one folding the whole 48 h gives."""
    from gpu_tray.core.idle import idle_map
    from gpu_tray.store.holders import trailing_stretches

    rnd = random.Random(seed)
    snaps = []
    t = T0
    utils = {i: 0 for i in range(4)}
    while t < T0 + DAY:
        t += 700 if rnd.random() < 0.002 else rnd.choice((10, 30, 60))
        gpus = []
        for i in range(4):
            if rnd.random() < 0.01:
                utils[i] = rnd.choice((0, 3, 50))
            util = 90 if rnd.random() < 0.002 else utils[i]
            g = gpu(i, util=util, mem=100, busy=rnd.random() > 0.002)
            gpus.append(g)
        snaps.append(ok("n1", t, *gpus))
    history, current = snaps[:-1], [snaps[-1]]
    conn = open_store(tmp_path / "h.sqlite3")
    Recorder(conn, clock=lambda: t).write(history)
    settings = IdleSettings(after_min=10)
    now = current[0].polled_at.timestamp()
    whole = idle_map(idle_samples(conn, now - 48 * 3600), current, settings)
    trailing = idle_map(trailing_stretches(conn, now, settings), current, settings)
    assert trailing == whole
    # Some units idle at the end, some not: both paths are exercised.
    assert 0 < len(whole) < 4, whole
