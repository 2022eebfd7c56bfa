"""Channels: what routing a firing costs the caller (the tray's GUI thread, watch's
loop), and what one Apprise delivery costs, each against a same-run baseline.

    .venv/bin/python benchmarks/channels.py [--n 2000] [--deliveries 50]

1. Caller cost: `ChannelSender.send` (what `TrayApp._dispatch` calls per channel) with
   a delivery function that returns at once, against a bare `queue.Queue.put`.
2. Delivery: `deliver()` (Apprise json://, log capture and scrubbing included) to a
   local HTTP endpoint, against a plain `urllib.request` POST of the same JSON to it.

Times are medians per call.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_tray.channels.deliver import Delivery, deliver  # noqa: E402
from gpu_tray.channels.message import Message  # noqa: E402
from gpu_tray.channels.sender import ChannelSender  # noqa: E402
from tests.harness.endpoints import http_endpoint  # noqa: E402

MESSAGE = Message("GPU free on node3", "node3: GPU 0 (H100 80GB) is free, 79 GiB")


def timed(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--deliveries", type=int, default=50)
    args = ap.parse_args()

    q: queue.Queue[Message] = queue.Queue()
    put = timed(lambda: q.put(MESSAGE), args.n)
    sender = ChannelSender(lambda _n: "json://x/y", deliver=lambda _u, _m: Delivery(True))
    send = timed(lambda: sender.send("lab", MESSAGE), args.n)
    sender.wait_idle(30)
    sender.close(5)

    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/hooks/token"
        deliver(url, MESSAGE)  # warm up: Apprise loads its plugins once
        apprise_s = timed(lambda: deliver(url, MESSAGE), args.deliveries)
        body = json.dumps({"title": MESSAGE.title, "message": MESSAGE.body}).encode()

        def raw() -> None:
            req = urllib.request.Request(
                f"http://127.0.0.1:{hook.port}/hooks/token",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(req, timeout=5).read()

        raw_s = timed(raw, args.deliveries)

    rows = [
        ("caller: queue.Queue.put (baseline)", put),
        ("caller: ChannelSender.send", send),
        ("delivery: urllib POST (baseline)", raw_s),
        ("delivery: deliver() via Apprise json://", apprise_s),
    ]
    print(f"{'what':<42} {'median':>12}")
    for what, s in rows:
        print(f"{what:<42} {s * 1e6:>9.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
