"""A history writer that writes until it is killed (for test_crash.py).

Usage: python -m tests.store.writer_child DB FIRST_SEQ
Snapshot `seq` is polled at T0 + seq seconds, alternating between two hosts, with
four GPUs whose values are functions of seq. After each commit it prints
"committed FIRST LAST" (flushed), so the parent knows what must survive.
"""

from __future__ import annotations

import sys
import time

from gpu_tray.store import HistoryWriter
from tests.store.helpers import T0, gpu, ok


def snapshot(seq: int):
    return ok(
        f"host{seq % 2}",
        T0 + seq,
        *(
            gpu(i, util=seq % 101, mem=seq, temp=30 + (seq + i) % 50, busy=(seq + i) % 3 == 0)
            for i in range(4)
        ),
    )


def main() -> None:
    db, seq = sys.argv[1], int(sys.argv[2])

    def committed(snaps) -> None:
        seqs = [int(s.polled_at.timestamp()) - T0 for s in snaps]
        print(f"committed {min(seqs)} {max(seqs)}", flush=True)

    writer = HistoryWriter(db, linger_s=0.005, on_commit=committed)
    writer.start()
    while True:
        writer.submit(snapshot(seq))
        seq += 1
        time.sleep(0.002)


if __name__ == "__main__":
    main()
