"""Retention tiers, and which tier (and bucket size) answers a time range.

raw: every poll, kept 48 h. 1m: 1-minute mean and max, kept 30 days.
15m: 15-minute mean and max, kept a year. A range is read from the finest
tier that covers it without reading too many rows, then grouped into buckets
so a plot gets about MAX_POINTS points per curve: a plot 1000 px wide cannot
show more, and reading more is what makes a window slow to open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOUR_S = 3600
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    step_s: int  # for raw: the default poll interval, used only to estimate row counts
    unit_table: str
    host_table: str
    health_table: str
    disk_table: str


RAW = Tier("raw", 10, "samples", "host_samples", "health_samples", "disk_samples")
MINUTE = Tier("1m", 60, "samples_1m", "host_1m", "health_1m", "disk_1m")
QUARTER = Tier("15m", 900, "samples_15m", "host_15m", "health_15m", "disk_15m")
TIERS = (RAW, MINUTE, QUARTER)
AGGREGATES = (MINUTE, QUARTER)


@dataclass(frozen=True, slots=True)
class Retention:
    raw_s: int = 48 * HOUR_S
    minute_s: int = 30 * DAY_S
    quarter_s: int = 365 * DAY_S
    states_s: int = 365 * DAY_S
    # Who held which unit (the people view reads a week back).
    holds_s: int = 8 * DAY_S

    def keep_s(self, tier: Tier) -> int:
        return {"raw": self.raw_s, "1m": self.minute_s, "15m": self.quarter_s}[tier.name]


DEFAULT_RETENTION = Retention()

MAX_POINTS = 500  # per curve, after grouping: about one per pixel of a plot
MAX_SCAN = 3000  # rows per curve a tier may be asked for before a coarser one is used
# Bucket sizes that read well on a date axis.
_NICE_S = (10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    tier: Tier
    # Group rows into buckets of this many seconds; None: raw polls as they are.
    bucket_s: int | None

    @property
    def resolution_s(self) -> int:
        return self.bucket_s or self.tier.step_s

    def describe(self) -> str:
        if self.bucket_s is None:
            return "every poll"
        return f"{_duration(self.bucket_s)} mean and max"


def plan_for(span_s: float, retention: Retention = DEFAULT_RETENTION) -> QueryPlan:
    for tier in TIERS:
        last = tier is TIERS[-1]
        if not last and (span_s > retention.keep_s(tier) or span_s / tier.step_s > MAX_SCAN):
            continue
        target = span_s / MAX_POINTS
        if target <= tier.step_s:
            return QueryPlan(tier, None if tier is RAW else tier.step_s)
        return QueryPlan(tier, nice_bucket(target, tier.step_s))
    raise AssertionError("unreachable")


def nice_bucket(target_s: float, step_s: int) -> int:
    for b in _NICE_S:
        if b >= target_s and b % step_s == 0:
            return b
    return math.ceil(target_s / 3600) * 3600


def _duration(s: int) -> str:
    if s % HOUR_S == 0:
        return f"{s // HOUR_S} h"
    if s % 60 == 0:
        return f"{s // 60} min"
    return f"{s} s"
