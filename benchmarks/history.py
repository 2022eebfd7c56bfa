"""History: store speed and size, window first paint, against a raw-query baseline.

    .venv/bin/python benchmarks/history.py [--days 30] [--hosts 10] [--gpus 8] [--interval 10]

1. Insert: a synthetic history (hosts x GPUs, one poll every `interval` s for
   `days`; jobs come and go, one host drops out now and then) is written with
   the store's own API: Recorder.write + Recorder.maintain, exactly what the
   writer thread runs (rollups included). This build keeps raw polls for the
   whole period, so the same file is also the no-aggregates baseline.
2. Size: a copy with the normal retention applied (raw 48 h, 1-minute 30 d,
   15-minute a year), by table, and projected to the steady state (a full year
   of 15-minute aggregates).
3. First paint of the history window for 24 h, 7 d and 30 d: from creating the
   window to its first frame with every plot in view drawn with data (median
   of 3, offscreen). Baseline: just reading the same range's raw polls, with
   no aggregates, into Python.

Targets (issue 4): first paint < 500 ms for any range; DB < 200 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The offscreen plugin warns about window-manager calls it cannot make: noise in a table.
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState  # noqa: E402
from gpu_tray.store import Recorder, Retention, open_store  # noqa: E402
from gpu_tray.store.tiers import DAY_S, plan_for  # noqa: E402

MODEL = "NVIDIA H100 80GB HBM3"
MEM = 81559
VARIANTS = 16
CHUNK_POLLS = 3000
RANGES = (("24h", DAY_S), ("7d", 7 * DAY_S), ("30d", 30 * DAY_S))


class _Gpu:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.index = index
        self.rng = rng
        self.until = 0.0
        self.variants: list[GpuSample] = []

    def at(self, ts: float, k: int) -> GpuSample:
        if ts >= self.until:
            self._next_job(ts)
        return self.variants[k % VARIANTS]

    def _next_job(self, ts: float) -> None:
        rng = self.rng
        hour = (ts % DAY_S) / 3600
        busy = rng.random() < (0.8 if 8 <= hour < 20 else 0.45)
        self.until = ts + rng.uniform(20, 180) * 60 if busy else ts + rng.uniform(10, 90) * 60
        mem = rng.randint(8000, 78000)
        proc = (GpuProcess(rng.randint(1000, 99999), "python train.py", mem - 400, "jdoe"),)
        self.variants = [
            GpuSample(
                index=self.index,
                uuid=f"GPU-{self.index:08d}",
                name=MODEL,
                memory_total_mib=MEM,
                memory_used_mib=mem if busy else rng.randint(1, 5),
                utilization_pct=rng.randint(55, 100) if busy else rng.randint(0, 2),
                temperature_c=rng.randint(60, 80) if busy else rng.randint(30, 36),
                power_w=500.0,
                processes=proc if busy else (),
            )
            for _ in range(VARIANTS)
        ]


def synthetic(
    hosts: int, gpus: int, days: float, interval: int, end: float
) -> Iterator[list[HostSnapshot]]:
    """Chunks of snapshots, oldest first. Host k polls k seconds after the round starts."""
    rng = random.Random(1)
    fleet = [[_Gpu(i, rng) for i in range(gpus)] for _ in range(hosts)]
    start = end - days * DAY_S
    chunk: list[HostSnapshot] = []
    k = 0
    t = start
    while t < end:
        for h, host_gpus in enumerate(fleet):
            ts = t + h
            when = datetime.fromtimestamp(ts, UTC)
            name = f"gpu-node{h + 1:02d}"
            if h == hosts - 1 and ts % (6 * 3600) < 600:  # the flaky one: 10 min in 6 h
                chunk.append(HostSnapshot(name, HostState.TIMEOUT, "No answer", polled_at=when))
                continue
            gpus_now = tuple(g.at(ts, k) for g in host_gpus)
            chunk.append(HostSnapshot(name, HostState.OK, None, when, 9.0, gpus_now, data_at=when))
        k += 1
        t += interval
        if k % CHUNK_POLLS == 0:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(path: Path, args: argparse.Namespace, end: float) -> tuple[float, int, float]:
    """Returns (seconds spent in the store, samples written, seconds generating)."""
    conn = open_store(path)
    keep_all = Retention(raw_s=int(args.days * DAY_S) + 3600)
    rec = Recorder(conn, retention=keep_all, clock=lambda: end)
    store_s = gen_s = 0.0
    samples = 0
    t = time.perf_counter()
    for chunk in synthetic(args.hosts, args.gpus, args.days, args.interval, end):
        t1 = time.perf_counter()
        gen_s += t1 - t
        rec.write(chunk)
        rec.maintain()
        t = time.perf_counter()
        store_s += t - t1
        samples += sum(len(s.gpus) for s in chunk)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return store_s, samples, gen_s


def _sparse(conn: sqlite3.Connection) -> bool:
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return free * 4 > conn.execute("PRAGMA page_count").fetchone()[0]


def sizes(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.Error:
        rows = []
    conn.close()
    return dict(rows)


def raw_query(path: Path, t0: float, t1: float) -> tuple[float, int]:
    """The baseline: every raw poll of the range, into Python, no aggregates."""
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    cur = conn.execute(
        "SELECT ts, unit_id, util, mem, temp FROM samples WHERE ts >= ? AND ts < ?",
        (int(t0), int(t1)),
    )
    n = 0
    while rows := cur.fetchmany(50_000):
        n += len(rows)
    dt = time.perf_counter() - t
    conn.close()
    return dt, n


def first_paint(path: Path, key: str, now: float) -> tuple[float, int]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from gpu_tray.ui.history.window import HistoryWindow

    app = QApplication.instance()
    t = time.perf_counter()
    w = HistoryWindow(path, clock=lambda: now, initial_range=key)
    w.show_when_ready()  # as open_history_window does
    loop = QEventLoop()
    w.range_loaded.connect(loop.quit)
    QTimer.singleShot(60_000, loop.quit)
    loop.exec()
    app.processEvents()  # lay out what was built, and paint the window: the first frame
    dt = time.perf_counter() - t
    built = sum(1 for s in w.sections.values() if s.built)
    w.close()
    w.deleteLater()
    app.processEvents()
    return dt, built


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="leave the two databases in DIR")
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["history-bench"])  # noqa: F841

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gpu-tray-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        end = float(int(time.time()) // 60 * 60)
        full = tmp / "raw-kept.sqlite3"
        print(
            f"history: {args.hosts} hosts x {args.gpus} GPUs, a poll every {args.interval} s, "
            f"{args.days:g} days\n"
        )
        store_s, samples, gen_s = build(full, args, end)
        print("1. insert (Recorder.write + maintain, rollups included)")
        print(f"   {samples:,} GPU samples in {store_s:.1f} s: {samples / store_s:,.0f} samples/s")
        polls_per_s = args.hosts / args.interval
        print(
            f"   a live cluster makes {polls_per_s * args.gpus:,.0f} samples/s: "
            f"{samples / store_s / (polls_per_s * args.gpus):,.0f}x headroom "
            f"(simulating the cluster took another {gen_s:.1f} s)\n"
        )

        prod = tmp / "history.sqlite3"
        shutil.copy(full, prod)
        conn = open_store(prod, check=False)
        t = time.perf_counter()
        rec = Recorder(conn, clock=lambda: end)
        rec.maintain()  # normal retention: raw 48 h
        retain_s = time.perf_counter() - t
        # The writer hands the freed pages back a few MB per pass; do its next passes now.
        passes = 0
        while passes < 1000 and _sparse(conn):
            rec.maintain()
            passes += 1
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size = prod.stat().st_size
        by_table = sizes(prod)
        print(
            f"2. size with normal retention (applied in {retain_s:.1f} s; "
            f"free pages handed back in {passes} more passes)"
        )
        print(f"   {'table':14} {'MB':>8}")
        for name in ("samples", "samples_1m", "samples_15m", "host_samples", "host_1m", "host_15m"):
            if name in by_table:
                print(f"   {name:14} {by_table[name] / 1e6:8.1f}")
        print(f"   {'file':14} {size / 1e6:8.1f}   (target < 200 MB)")
        if by_table:
            print(f"   {'in use':14} {sum(by_table.values()) / 1e6:8.1f}   (pages holding data)")
            # Each tier grows until it holds its retention's worth, then stays there.
            steady = sum(by_table.values())
            for tables, keep_days in (
                (("samples", "host_samples"), 2),
                (("samples_1m", "host_1m"), 30),
                (("samples_15m", "host_15m"), 365),
            ):
                part = sum(by_table.get(t, 0) for t in tables)
                steady += part * keep_days / min(args.days, keep_days) - part
            print(
                f"   {'steady state':14} {steady / 1e6:8.1f}   (every tier full: a year of 15 min)"
            )
        kept = full.stat().st_size / 1e6
        print(f"   raw kept for all {args.days:g} days (the baseline file): {kept:.1f} MB\n")

        print(f"3. first paint of the window (median of {args.runs}) vs reading raw polls")
        print(
            f"   {'range':6} {'read from':22} {'first paint':>12} {'sections':>9}   "
            f"{'raw baseline':>13} {'raw rows':>12}"
        )
        for key, span in RANGES:
            if span > args.days * DAY_S * 1.01:
                continue
            times = []
            built = 0
            for _ in range(args.runs):
                dt, built = first_paint(prod, key, end)
                times.append(dt)
            raw_s, raw_n = raw_query(full, end - span, end)
            plan = plan_for(span)
            where = f"{plan.tier.name}, {plan.describe()}"
            print(
                f"   {key:6} {where:22} {statistics.median(times) * 1000:9.0f} ms {built:9d}   "
                f"{raw_s * 1000:10.0f} ms {raw_n:12,}"
            )
        print(
            "   (target: first paint < 500 ms; sections = host sections built for the first frame)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
