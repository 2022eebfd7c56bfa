"""Who-holds-what (schema 3's `holds`): write cost, size, and the reads the tray,
`gpu-tray status` and the People tab make, against same-run baselines.

    .venv/bin/python benchmarks/holds.py [--days 8] [--hosts 10] [--gpus 8] [--interval 30]

1. Write: the same synthetic history (hosts x GPUs, one poll every `interval` s
   for `days`, about half the GPUs held by one of six users) written with
   Recorder.write twice: as is, and with every process stripped (no holds rows:
   the baseline, what schema 2 wrote).
2. Size: the holds table's share of the file (dbstat).
3. Reads, median of 5: GPU-hours over 24 h and 7 d, the idle samples of the last
   48 h (all of them: the People tab's shading) and only each unit's trailing
   stretch (what `idle_since` needs), the tray's whole read (`tray_extras`), the
   People tab's (`people_view`), and `status_extras`. Baseline: counting the raw
   samples of the last 48 h.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState  # noqa: E402
from gpu_tray.core.settings import FreeThresholds, IdleSettings  # noqa: E402
from gpu_tray.store import Recorder, open_store  # noqa: E402
from gpu_tray.store.holder_views import people_view, status_extras, tray_extras  # noqa: E402
from gpu_tray.store.holders import gpu_hours, idle_samples, trailing_stretches  # noqa: E402

USERS = ("alice.longname", "bob", "carol", "dave", "erin", "a.very-long-username")


def history(days: int, hosts: int, gpus: int, interval: int) -> list[HostSnapshot]:
    rng = random.Random(4)
    end = 1_780_000_000
    start = end - days * 86_400
    held: dict[tuple[int, int], tuple[str | None, float, int]] = {}
    out = []
    for ts in range(start, end, interval):
        at = datetime.fromtimestamp(ts, UTC)
        for h in range(hosts):
            samples = []
            for g in range(gpus):
                user, until, util = held.get((h, g), (None, 0.0, 0))
                if ts >= until:
                    user = rng.choice(USERS) if rng.random() < 0.5 else None
                    util = rng.choice((0, 2, 60, 95, 99))
                    held[(h, g)] = (user, ts + rng.uniform(600, 6 * 3600), util)
                procs = (GpuProcess(1000 + g, "python", 9000, user),) if user else ()
                samples.append(
                    GpuSample(g, f"GPU-{h}-{g}", "NVIDIA H100 80GB HBM3", 81559,
                              9000 if user else 3, util if user else 0, 40, processes=procs)
                )
            out.append(HostSnapshot(f"node{h:02d}", HostState.OK, polled_at=at,
                                    gpus=tuple(samples), data_at=at))
    return out


def write(path: Path, snaps: list[HostSnapshot]) -> float:
    conn = open_store(path)
    rec = Recorder(conn, clock=lambda: snaps[-1].polled_at.timestamp())
    t = time.perf_counter()
    for k in range(0, len(snaps), 500):
        rec.write(snaps[k : k + 500])
    took = time.perf_counter() - t
    conn.close()
    return took


def median_ms(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--interval", type=int, default=30)
    a = ap.parse_args()
    snaps = history(a.days, a.hosts, a.gpus, a.interval)
    bare = [replace(s, gpus=tuple(replace(g, processes=()) for g in s.gpus)) for s in snaps]
    tmp = Path(tempfile.mkdtemp(prefix="gpu-tray-bench-holds-"))
    with_holds = write(tmp / "holds.sqlite3", snaps)
    without = write(tmp / "bare.sqlite3", bare)
    db = tmp / "holds.sqlite3"
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT count(*) FROM holds").fetchone()[0]
    try:
        size = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        holds_mb, total_mb = size.get("holds", 0) / 1e6, sum(size.values()) / 1e6
    except sqlite3.Error:
        holds_mb = total_mb = float("nan")
    now = snaps[-1].polled_at.timestamp()
    last = {s.name: s for s in snaps[-a.hosts:]}
    print(f"{len(snaps)} polls ({a.hosts} hosts x {a.gpus} GPUs, every {a.interval} s, "
          f"{a.days} days); {rows} holds rows")
    print()
    print(f"{'what':<44} {'ms':>10}")
    print(f"{'write, processes stripped (baseline)':<44} {without * 1000:>10.0f}")
    print(f"{'write, with holds':<44} {with_holds * 1000:>10.0f}")
    print(f"{'holds table / whole file (MB)':<44} {holds_mb:>5.1f} / {total_mb:.1f}")
    base = median_ms(lambda: conn.execute(
        "SELECT count(*) FROM samples WHERE ts >= ?", (now - 48 * 3600,)).fetchone())
    print(f"{'count raw samples of 48 h (baseline)':<44} {base:>10.1f}")
    print(f"{'gpu_hours, 24 h':<44} {median_ms(lambda: gpu_hours(conn, now - 86_400, now)):>10.1f}")
    print(f"{'gpu_hours, 7 d':<44} "
          f"{median_ms(lambda: gpu_hours(conn, now - 7 * 86_400, now)):>10.1f}")
    print(f"{'idle_samples, 48 h':<44} "
          f"{median_ms(lambda: idle_samples(conn, now - 48 * 3600)):>10.1f}")
    print(f"{'trailing_stretches (idle_since reads)':<44} "
          f"{median_ms(lambda: trailing_stretches(conn, now, IdleSettings())):>10.1f}")
    hosts = list(last)
    print(f"{'tray_extras (tray, worker thread)':<44} "
          f"{median_ms(lambda: tray_extras(db, hosts, now, with_samples=True)):>10.1f}")
    print(f"{'people_view (People tab, loader thread)':<44} "
          f"{median_ms(lambda: people_view(db, now, IdleSettings())):>10.1f}")
    current = list(last.values())
    status_ms = median_ms(
        lambda: status_extras(db, current, IdleSettings(), lambda _h: FreeThresholds())
    )
    print(f"{'status_extras (gpu-tray status)':<44} {status_ms:>10.1f}")


if __name__ == "__main__":
    main()
