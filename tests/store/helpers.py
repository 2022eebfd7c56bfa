"""Snapshots with known values, and brute-force versions of what the store computes."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState, MigDevice
from gpu_tray.core.na import NA
from gpu_tray.store import Recorder, open_store

T0 = 1_780_000_000 - 1_780_000_000 % 86_400  # a UTC midnight (a Thursday)
HOUR, DAY = 3600, 86_400
THU, FRI, MON = 3, 4, 0  # heatmap rows (Monday = 0)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def gpu(
    index: int,
    util: object = 0,
    mem: object = 0,
    temp: object = 30,
    busy: bool = False,
    total: int = 81920,
    model: str = "NVIDIA A100-SXM4-80GB",
) -> GpuSample:
    procs = (
        (GpuProcess(1000 + index, "python train.py", 100, "a.very-long-username"),) if busy else ()
    )
    return GpuSample(
        index=index,
        uuid=f"GPU-{index:04d}",
        name=model,
        memory_total_mib=total,
        memory_used_mib=mem,
        utilization_pct=util,
        temperature_c=temp,
        processes=procs,
    )


def mig_gpu(index: int, mems: list[int], busy: list[bool]) -> GpuSample:
    migs = tuple(
        MigDevice(
            index=i,
            uuid=f"MIG-{index}-{i}",
            profile="1g.10gb",
            gpu_instance_id=i + 7,
            compute_instance_id=0,
            memory_total_mib=9984,
            memory_used_mib=m,
            processes=(GpuProcess(2000 + i, "python", m, "jdoe", i + 7, 0),) if b else (),
        )
        for i, (m, b) in enumerate(zip(mems, busy, strict=True))
    )
    return GpuSample(
        index=index,
        uuid=f"GPU-{index:04d}",
        name="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        memory_used_mib=sum(mems),
        utilization_pct=NA,
        temperature_c=40,
        mig_enabled=True,
        mig_devices=migs,
    )


def ok(host: str, ts: float, *gpus: GpuSample) -> HostSnapshot:
    return HostSnapshot(host, HostState.OK, None, polled_at=at(ts), gpus=gpus, data_at=at(ts))


def down(
    host: str, ts: float, state: HostState = HostState.TIMEOUT, message: str | None = None
) -> HostSnapshot:
    return HostSnapshot(
        host, state, message or f"No answer from {host} within 10 s", polled_at=at(ts)
    )


def round_half_away(x: float) -> int:
    """SQLite's round(): halves go away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def brute_unit_aggregates(raw: list[tuple], step: int) -> dict[tuple[int, int], tuple]:
    """raw rows (ts, unit_id, util, mem, temp) -> {(bucket, unit): (means and maxes)}."""
    groups: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for ts, uid, util, mem, temp in raw:
        groups[(ts - ts % step, uid)].append((util, mem, temp))
    out = {}
    for key, rows in groups.items():
        vals = []
        for col in range(3):
            known = [r[col] for r in rows if r[col] is not None]
            if known:
                vals += [round_half_away(sum(known) / len(known)), max(known)]
            else:
                vals += [None, None]
        out[key] = tuple(vals)
    return out


def brute_host_aggregates(raw: list[tuple], step: int) -> dict[tuple[int, int], tuple]:
    """raw rows (ts, host_id, free, total) -> {(bucket, host): (n, free_sum, free_max, any_free, total)}."""
    groups: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for ts, hid, free, total in raw:
        groups[(ts - ts % step, hid)].append((free, total))
    return {
        key: (
            len(rows),
            sum(f for f, _ in rows),
            max(f for f, _ in rows),
            sum(1 for f, _ in rows if f > 0),
            max(t for _, t in rows),
        )
        for key, rows in groups.items()
    }


def table(conn: sqlite3.Connection, name: str) -> dict[tuple[int, int], tuple]:
    return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(f"SELECT * FROM {name}")}


def seed_heatmap_store(db: Path) -> None:
    """A host with one GPU; free when util=0 and no process. By hand:

    Thursday 00:00-01:00: 4 polls, 3 free                      -> 0.75
    Thursday 01:00-02:00: 2 polls, none free                   -> 0.0
    Monday 13:00-14:00, two weeks: 4 free polls, 4 busy polls  -> 0.5
    Thursday 02:00-02:30: down (no polls)                      -> no data
    """
    mon1 = T0 + 4 * DAY
    mon2 = mon1 + 7 * DAY
    free, busy = gpu(0, util=0, mem=0), gpu(0, util=99, mem=9000, busy=True)
    snaps = [
        ok("n", T0 + 60, free),
        ok("n", T0 + 1000, free),
        ok("n", T0 + 2000, busy),
        ok("n", T0 + 3000, free),
        ok("n", T0 + HOUR + 100, busy),
        ok("n", T0 + HOUR + 2000, busy),
        down("n", T0 + 2 * HOUR),
        *(ok("n", mon1 + 13 * HOUR + 600 * k, free) for k in range(4)),
        *(ok("n", mon2 + 13 * HOUR + 600 * k, busy) for k in range(4)),
        ok("n", mon2 + 20 * HOUR, free),  # later, so the 13:00 buckets are rolled up
    ]
    rec = Recorder(open_store(db), clock=lambda: T0 + 60 * DAY)
    for s in snaps:  # one at a time, maintaining as the writer does
        rec.write([s])
        rec.maintain()
