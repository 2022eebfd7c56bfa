"""When will a GPU free? From a scheduler's job end times ("4 GPUs at ~14:35"), and
from history alone ("usually free by 02:00").

Said only when the history supports it. The decision, exactly:

1. The evidence is the 15-minute history of the host: for each 15-minute
   bucket, whether at least one unit of the host was free at some poll in it.
2. Candidate hours are the next `HORIZON_H` (24) whole hours after now, on UTC
   hour boundaries: [H, H + 1 h) for H = the next full hour, the one after, ...
3. For a candidate hour, look at the same hour in each of the past
   `WEEKS` (8) weeks (H - 7 d, H - 14 d, ...). A past week *counts* when it
   has at least one bucket in that hour (the app was running); it was *free*
   when one of those buckets had a free unit.
4. An hour *qualifies* when at least `MIN_WEEKS` (3) past weeks count, and a
   GPU was free in at least `SHARE` (75 %) of the weeks that count.
5. The answer is the END of the first qualifying hour: "usually free by"
   that time. No qualifying hour: no answer (None), and nothing is shown.

A host with a free unit now gets no prediction (there is nothing to wait
for). Across a daylight-saving change the same UTC hour is a local hour off;
the evidence is weekly, so this costs one week in the year at most.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gpu_tray.core.availability import host_units
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.settings import FreeThresholds

HOUR_S = 3600
WEEK_S = 7 * 86_400
HORIZON_H = 24
WEEKS = 8
MIN_WEEKS = 3
SHARE = 0.75


@dataclass(frozen=True, slots=True)
class HourEvidence:
    """What the past weeks say about one candidate hour."""

    start: int  # epoch seconds, UTC, a whole hour
    weeks_with_data: int
    weeks_free: int

    def qualifies(self, min_weeks: int = MIN_WEEKS, share: float = SHARE) -> bool:
        return self.weeks_with_data >= min_weeks and self.weeks_free >= share * self.weeks_with_data


def evidence(
    quarters: Iterable[tuple[int, bool]], now: float, weeks: int = WEEKS
) -> list[HourEvidence]:
    """The evidence for each of the next HORIZON_H hours (see the module doc)."""
    seen: dict[int, bool] = {}  # hour start -> any free bucket in that hour
    for ts, free in quarters:
        hour = ts - ts % HOUR_S
        seen[hour] = seen.get(hour, False) or free
    first = int(now) - int(now) % HOUR_S + HOUR_S
    out = []
    for k in range(HORIZON_H):
        start = first + k * HOUR_S
        past = [seen[h] for w in range(1, weeks + 1) if (h := start - w * WEEK_S) in seen]
        out.append(HourEvidence(start, len(past), sum(past)))
    return out


def usually_free_by(
    quarters: Iterable[tuple[int, bool]],
    now: float,
    *,
    weeks: int = WEEKS,
    min_weeks: int = MIN_WEEKS,
    share: float = SHARE,
) -> int | None:
    """Epoch seconds by which a GPU is usually free, or None when history does not say."""
    for hour in evidence(quarters, now, weeks):
        if hour.qualifies(min_weeks, share):
            return hour.start + HOUR_S
    return None


# -- from a scheduler: the end times of the jobs holding the GPUs --------------------------


def expected_groups(snap: HostSnapshot, limits: FreeThresholds) -> list[tuple[datetime, int]]:
    """(expected free time rounded up to the minute, how many GPUs) for the GPUs of
    `snap` that are not free now and have an `expected_free_at`, soonest first."""
    free = {u.gpu_index for u in host_units(snap, limits) if u.free}
    groups: dict[datetime, int] = {}
    for g in snap.gpus:
        if g.index in free or g.expected_free_at is None:
            continue
        at = g.expected_free_at
        if at.second or at.microsecond:
            at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        groups[at] = groups.get(at, 0) + 1
    return sorted(groups.items())


def expected_text(groups: Sequence[tuple[datetime, int]], limit: int = 2) -> str:
    """ "4 GPUs at ~14:35" | "1 GPU at ~13:00, 2 at ~14:35" (local time)."""
    parts = []
    for i, (at, n) in enumerate(groups[:limit]):
        what = f"{n} GPU{'s' if n != 1 else ''}" if i == 0 else str(n)
        parts.append(f"{what} at ~{at.astimezone().strftime('%H:%M')}")
    return ", ".join(parts)
