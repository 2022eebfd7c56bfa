"""A simulated week of history for the demo cluster, so the window is never empty.

The demo cluster is a pure function of time, so the backfilled past and the
live demo agree. Sampling is densest where the window shows the most detail:
every minute for the last 6 h (the 1 h and 6 h ranges), every 2 minutes until
48 h ago (the 24 h range draws 2-minute buckets), every 10 minutes before that
(only the 15-minute tier keeps it). About 12k snapshots: two seconds or so on
the writer thread, most of it simulating the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from gpu_tray.core.models import HostSnapshot
from gpu_tray.sources.demo.cluster import DemoCluster, backfill_times

# (how far back this stretch starts, in hours, and its sampling step in seconds)
_STRETCHES = ((7 * 24, 600), (48, 120), (6, 60))


def demo_history(
    now: datetime | None = None, days: float = 7, seed: int = 7
) -> Iterator[HostSnapshot]:
    """Snapshots of the demo cluster from `days` ago until just before `now`, oldest first."""
    now = now or datetime.now(UTC)
    cluster = DemoCluster(seed)
    stretches = [(min(h, days * 24), step) for h, step in _STRETCHES]
    for i, (hours, step) in enumerate(stretches):
        end_hours = stretches[i + 1][0] if i + 1 < len(stretches) else 0
        if hours <= end_hours:
            continue
        end = now - timedelta(hours=end_hours)
        for when in backfill_times(end, (hours - end_hours) / 24, step_s=step):
            yield from cluster.snapshots_at(when)
