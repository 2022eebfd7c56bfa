"""The people view: who holds how many GPUs now, how many of those are idle and since
when, and GPU-hours per user over the last day and week (from history).

A unit is a whole GPU or one MIG device, as everywhere else; a unit that two
users hold counts for both. Processes whose owner is not visible are grouped
under `UNKNOWN_USER`. Usernames are shown in full (never cut to 8 characters).
Pure and Qt-free: the tray, the history window and tests call `people()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpu_tray.core.idle import UnitKey
from gpu_tray.core.models import HostSnapshot, HostState

#: How the people view names processes whose owner is not visible ('' in the history).
UNKNOWN_USER = "(owner not visible)"


@dataclass(frozen=True, slots=True)
class Person:
    user: str
    gpus_now: int  # units held now
    idle_now: int  # of those, units held idle now
    idle_since: float | None  # the earliest idle_since among them (epoch seconds)
    hours_day: float  # GPU-hours over the last 24 h
    hours_week: float  # GPU-hours over the last 7 days


def holders_now(snaps: Iterable[HostSnapshot]) -> dict[UnitKey, tuple[str, ...]]:
    """Every unit held in a current (ok, not stale) snapshot -> its users."""
    out: dict[UnitKey, tuple[str, ...]] = {}
    for snap in snaps:
        if snap.state is not HostState.OK or snap.stale:
            continue
        for gpu in snap.gpus:
            if gpu.mig_enabled and gpu.mig_devices:
                units = [((snap.name, gpu.index, m.index), m.processes) for m in gpu.mig_devices]
            else:
                units = [((snap.name, gpu.index, None), gpu.processes)]
            for key, procs in units:
                if procs:
                    out[key] = tuple(dict.fromkeys(p.user or UNKNOWN_USER for p in procs))
    return out


def people(
    snaps: Iterable[HostSnapshot],
    idle_since: Mapping[UnitKey, float],
    hours_day: Mapping[str, float],
    hours_week: Mapping[str, float],
) -> list[Person]:
    """One row per user who holds a unit now or held one in the last week; most GPUs
    first, then most GPU-hours this week, then by name."""
    return people_from_holders(holders_now(snaps), idle_since, hours_day, hours_week)


def people_from_holders(
    holders: Mapping[UnitKey, tuple[str, ...]],
    idle_since: Mapping[UnitKey, float],
    hours_day: Mapping[str, float],
    hours_week: Mapping[str, float],
) -> list[Person]:
    """`people()` from unit -> users held now (from snapshots, or the newest polls in
    the history)."""
    held: dict[str, list[UnitKey]] = {}
    for key, users in holders.items():
        for user in users:
            held.setdefault(user, []).append(key)

    def name(user: str) -> str:
        return user or UNKNOWN_USER

    users = set(held) | {name(u) for u in hours_day} | {name(u) for u in hours_week}
    day = {name(u): h for u, h in hours_day.items()}
    week = {name(u): h for u, h in hours_week.items()}
    rows = []
    for user in users:
        units = held.get(user, [])
        idle = [idle_since[k] for k in units if k in idle_since]
        rows.append(
            Person(
                user,
                len(units),
                len(idle),
                min(idle) if idle else None,
                day.get(user, 0.0),
                week.get(user, 0.0),
            )
        )
    rows.sort(key=lambda p: (-p.gpus_now, -p.hours_week, p.user))
    return rows
