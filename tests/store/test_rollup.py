"""Tiered retention and incremental rollups, checked against a brute-force computation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gpu_tray.core.na import NA
from gpu_tray.store import Recorder, Retention, open_store
from gpu_tray.store import recorder as recorder_mod
from gpu_tray.store.recorder import GRACE_S

from .helpers import (
    T0,
    brute_host_aggregates,
    brute_unit_aggregates,
    down,
    gpu,
    mig_gpu,
    ok,
    table,
)

RETENTION = Retention(raw_s=3 * 3600, minute_s=86_400, quarter_s=2 * 86_400, states_s=2 * 86_400)
DAYS = 2.3


def _maybe(rng: random.Random, lo: int, hi: int) -> object:
    return NA if rng.random() < 0.05 else rng.randint(lo, hi)


def _history(seed: int) -> list:
    """3.5 days of three hosts polled every 5-25 s, with outages and MIG units."""
    rng = random.Random(seed)
    snaps = []
    for host, n in (("alpha", 2), ("beta", 3), ("gamma", 1)):
        t = T0 + rng.randint(0, 20)
        down_until = 0
        while t < T0 + DAYS * 86_400:
            if t < down_until:
                snaps.append(down(host, t))
            elif rng.random() < 0.0005:
                down_until = t + rng.randint(60, 3000)
                snaps.append(down(host, t))
            else:
                gpus = [
                    gpu(
                        i,
                        util=_maybe(rng, 0, 100),
                        mem=_maybe(rng, 0, 80_000),
                        temp=_maybe(rng, 25, 90),
                        busy=rng.random() < 0.5,
                    )
                    for i in range(n)
                ]
                if host == "gamma":
                    gpus.append(
                        mig_gpu(
                            1,
                            [rng.randint(0, 9000), rng.randint(0, 30)],
                            [rng.random() < 0.5, False],
                        )
                    )
                snaps.append(ok(host, t, *gpus))
            t += rng.randint(5, 25)
    snaps.sort(key=lambda s: s.polled_at)
    # Deliveries arrive a little out of order, and now and then minutes late.
    for _ in range(len(snaps) // 50):
        i = rng.randrange(len(snaps) - 40)
        j = i + rng.randint(1, 40)
        snaps[i], snaps[j] = snaps[j], snaps[i]
    return snaps


@pytest.mark.parametrize("seed", [1, 2])
def test_tiers_match_brute_force_after_incremental_maintenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rolled: list[tuple[str, int, int]] = []
    real_roll = recorder_mod._roll

    def spy(conn, tier, lo, hi):
        rolled.append((tier.name, lo, hi))
        real_roll(conn, tier, lo, hi)

    monkeypatch.setattr(recorder_mod, "_roll", spy)
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn, retention=RETENTION, clock=lambda: T0 + 100 * 86_400)
    snaps = _history(seed)
    rng = random.Random(seed)
    i = 0
    maintains = 0
    while i < len(snaps):
        n = rng.randint(1, 60)
        rec.write(snaps[i : i + n])
        i += n
        if rec.needs_maintenance:
            rec.maintain()
            maintains += 1
    rec.maintain()

    # Brute force from every sample written (unit ids as the store gave them).
    unit_ids = {
        (host, g, m): uid
        for uid, host, g, m in conn.execute(
            "SELECT u.id, h.name, u.gpu_index, u.mig_index FROM units u JOIN hosts h ON h.id = u.host_id"
        )
    }
    host_ids = dict(conn.execute("SELECT name, id FROM hosts"))
    raw, host_raw = {}, {}
    from gpu_tray.core.availability import host_units
    from gpu_tray.core.settings import FreeThresholds

    for s in snaps:
        if not s.ok:
            continue
        ts = int(s.polled_at.timestamp())
        units = host_units(s, FreeThresholds())
        host_raw[(ts, host_ids[s.name])] = (sum(u.free for u in units), len(units))
        for g in s.gpus:
            val = [
                None if v is NA else v
                for v in (g.utilization_pct, g.memory_used_mib, g.temperature_c)
            ]
            raw[(ts, unit_ids[(s.name, g.index, None)])] = tuple(val)
            for m in g.mig_devices:
                raw[(ts, unit_ids[(s.name, g.index, m.index)])] = (None, m.memory_used_mib, None)
    raw_rows = [k + v for k, v in raw.items()]
    host_rows = [k + v for k, v in host_raw.items()]

    now = max(int(s.polled_at.timestamp()) for s in snaps)
    done = dict(conn.execute("SELECT tier, done_until FROM rollup_state"))
    assert done["1m"] == (now - GRACE_S) // 60 * 60
    assert done["15m"] == (now - GRACE_S) // 900 * 900

    def expected(agg: dict, step: int, keep: int, tier: str) -> dict:
        return {k: v for k, v in agg.items() if now - keep <= k[0] < done[tier]}

    for step, keep, tier, unit_table, host_table in (
        (60, RETENTION.minute_s, "1m", "samples_1m", "host_1m"),
        (900, RETENTION.quarter_s, "15m", "samples_15m", "host_15m"),
    ):
        want_units = expected(brute_unit_aggregates(raw_rows, step), step, keep, tier)
        assert table(conn, unit_table) == want_units
        want_hosts = expected(brute_host_aggregates(host_rows, step), step, keep, tier)
        assert table(conn, host_table) == want_hosts
        assert len(want_units) > 100

    raw_cut = min(now - RETENTION.raw_s, done["1m"], done["15m"])
    assert table(conn, "samples") == {k: v for k, v in raw.items() if k[0] >= raw_cut}
    assert table(conn, "host_samples") == {k: v for k, v in host_raw.items() if k[0] >= raw_cut}
    oldest_state = conn.execute("SELECT min(ts) FROM host_states").fetchone()[0]
    assert oldest_state >= now - RETENTION.states_s

    # Incremental: the watermark advances over each bucket once; re-rolls are only for
    # buckets that late samples landed in. Nothing is ever rolled from the start again.
    for tier in ("1m", "15m"):
        spans = [(lo, hi) for name, lo, hi in rolled if name == tier]
        first_bucket = min(lo for lo, _ in spans)
        assert sum(hi - lo for lo, hi in spans) < (done[tier] - first_bucket) * 1.5
        assert max(hi - lo for lo, hi in spans[1:]) < 3 * 3600  # no pass reads the whole history
    assert maintains > 100


def test_retention_keeps_raw_that_is_not_rolled_up_yet(tmp_path: Path) -> None:
    """Raw rows leave only after every tier has them, even if they are past 48 h."""
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn, retention=Retention(raw_s=60), clock=lambda: T0 + 86_400)
    rec.write([ok("n", T0 + 10 * k, gpu(0, util=k)) for k in range(200)])
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 200
    rec.maintain()
    done15 = conn.execute("SELECT done_until FROM rollup_state WHERE tier = '15m'").fetchone()[0]
    assert done15 == T0 + 1800  # the newest sample is T0+1990: (1990 - grace) // 900 * 900
    # raw_s=60 alone would let everything before T0+1930 go, but 15m has only up to T0+1800.
    assert conn.execute("SELECT min(ts) FROM samples").fetchone()[0] == T0 + 1800


def test_late_sample_older_than_raw_retention_is_dropped(tmp_path: Path) -> None:
    """It would turn a finished aggregate into the mean of one sample."""
    conn = open_store(tmp_path / "h.sqlite3")
    rec = Recorder(conn, retention=Retention(raw_s=3600), clock=lambda: T0 + 86_400)
    rec.write([ok("n", T0 + 10 * k, gpu(0, util=50)) for k in range(1000)])
    rec.maintain()
    before = table(conn, "samples_1m")
    assert rec.write([ok("n", T0 + 5, gpu(0, util=99))]) == 0
    rec.maintain()
    assert table(conn, "samples_1m") == before
