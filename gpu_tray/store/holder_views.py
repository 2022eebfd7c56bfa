"""What `gpu-tray status`, the tray and the history window's People tab read from the
holds (store/holders.py), each in one read transaction on a read-only connection:

- `status_extras()`: `idle_since` per unit and "usually free by" per host;
- `tray_extras()`: GPU-hours per user, "usually free by", and the stretches that
  seed the tray's idle tracker;
- `people_view()`: the People tab and the held-idle shading.

A missing, older, foreign or damaged file gives empty answers, never an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gpu_tray.core.availability import ThresholdsFor, host_units
from gpu_tray.core.idle import IdleSample, UnitKey, fold, idle_map, stretches
from gpu_tray.core.join import SCHEDULER_SOURCES
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.people import UNKNOWN_USER, Person, people_from_holders
from gpu_tray.core.prediction import WEEKS, usually_free_by
from gpu_tray.core.settings import IdleSettings
from gpu_tray.store.holders import (
    IDLE_LOOKBACK_S,
    free_quarters,
    gpu_hours,
    idle_samples,
    open_read_only,
    trailing_stretches,
)


def status_extras(
    path: Path | str,
    snaps: Sequence[HostSnapshot],
    settings: IdleSettings,
    thresholds_for: ThresholdsFor,
) -> tuple[dict[UnitKey, float], dict[str, datetime]]:
    """What `gpu-tray status` adds from the history file: `idle_since` per unit held
    idle, and "usually free by" per measured host with no free unit. A missing,
    older, foreign or damaged file gives ({}, {}): never an error."""
    conn = open_read_only(path)
    if conn is None:
        return idle_map({}, snaps, settings), {}
    try:
        newest = max((s.polled_at.timestamp() for s in snaps), default=0.0)
        conn.execute("BEGIN")
        history = trailing_stretches(conn, newest, settings, [s.name for s in snaps])
        usual: dict[str, datetime] = {}
        for s in snaps:
            if not s.ok or s.source in SCHEDULER_SOURCES:
                continue
            if any(u.free for u in host_units(s, thresholds_for(s.name))):
                continue
            now = s.polled_at.timestamp()
            quarters = free_quarters(conn, s.name, now - (WEEKS * 7 + 1) * 86_400, now)
            if (by := usually_free_by(quarters, now)) is not None:
                usual[s.name] = datetime.fromtimestamp(by, UTC)
        conn.execute("COMMIT")
    except sqlite3.Error:
        return idle_map({}, snaps, settings), {}
    finally:
        conn.close()
    return idle_map(history, snaps, settings), usual


@dataclass(frozen=True, slots=True)
class TrayExtras:
    """What the tray takes from the history (read on a worker thread)."""

    samples: dict[UnitKey, list[IdleSample]]
    hours_day: dict[str, float]
    hours_week: dict[str, float]
    usually_free_by: dict[str, datetime]


def tray_extras(
    path: Path | str,
    hosts: Sequence[str],
    now: float,
    *,
    with_samples: bool,
    settings: IdleSettings | None = None,
) -> TrayExtras:
    """GPU-hours per user over the last day and week, "usually free by" per host in
    `hosts`, and (`with_samples`) the last 48 h of idle samples to seed the tracker.
    Nothing (never an error) from a missing, older or damaged file."""
    empty = TrayExtras({}, {}, {}, {})
    settings = settings or IdleSettings()
    conn = open_read_only(path)
    if conn is None:
        return empty
    try:
        conn.execute("BEGIN")
        samples = trailing_stretches(conn, now, settings, hosts) if with_samples else {}
        day = gpu_hours(conn, now - 86_400, now + 1)
        week = gpu_hours(conn, now - 7 * 86_400, now + 1)
        usual = {}
        for host in hosts:
            quarters = free_quarters(conn, host, now - (WEEKS * 7 + 1) * 86_400, now)
            if (by := usually_free_by(quarters, now)) is not None:
                usual[host] = datetime.fromtimestamp(by, UTC)
        conn.execute("COMMIT")
    except sqlite3.Error:
        return empty
    finally:
        conn.close()
    return TrayExtras(samples, day, week, usual)


@dataclass(frozen=True, slots=True)
class PeopleView:
    """The history window's People tab, and the idle stretches it shades."""

    people: list[Person]
    # Unit -> held-idle stretches (start, end) in the last 48 h.
    stretches: dict[UnitKey, list[tuple[float, float]]]
    as_of: float | None  # the newest poll in the file


def people_view(
    path: Path | str, now: float, settings: IdleSettings, since: float | None = None
) -> PeopleView:
    """Who holds what at each host's newest poll in the history (of the last 48 h), idle
    since when, GPU-hours over the last day and week, and the held-idle stretches from
    `since` (at most 48 h back) to shade: the people view from history alone (the
    window works without the tray). Nothing from a missing or damaged file."""
    conn = open_read_only(path)
    if conn is None:
        return PeopleView([], {}, None)
    floor = now - IDLE_LOOKBACK_S
    shade_from = floor if since is None else max(floor, since)
    try:
        conn.execute("BEGIN")
        newest = dict(
            conn.execute(
                "SELECT h.name, max(s.ts) FROM host_samples AS s "
                "JOIN hosts AS h ON h.id = s.host_id WHERE s.ts >= ? GROUP BY h.name",
                (int(floor),),
            )
        )
        held: dict[UnitKey, tuple[str, ...]] = {}
        for host, ts in newest.items():
            for gpu, mig, user in conn.execute(
                "SELECT u.gpu_index, u.mig_index, d.user FROM holds AS d "
                "JOIN units AS u ON u.id = d.unit_id JOIN hosts AS h ON h.id = u.host_id "
                "WHERE d.ts = ? AND h.name = ? ORDER BY d.user",
                (ts, host),
            ):
                key = (host, gpu, mig)
                held[key] = (*held.get(key, ()), user or UNKNOWN_USER)
        trailing = trailing_stretches(conn, now, settings, host_now=newest)
        samples = idle_samples(conn, shade_from)
        day = gpu_hours(conn, now - 86_400, now + 1)
        week = gpu_hours(conn, now - 7 * 86_400, now + 1)
        conn.execute("COMMIT")
    except sqlite3.Error:
        return PeopleView([], {}, None)
    finally:
        conn.close()
    idle: dict[UnitKey, float] = {}
    for key, unit in trailing.items():
        if key not in held or unit[-1].ts != newest.get(key[0]):
            continue  # a stretch that ended before the host's newest poll
        if (at := fold(unit, settings).idle_since(unit[-1].ts, settings)) is not None:
            idle[key] = at
    shaded = {key: found for key, unit in samples.items() if (found := stretches(unit, settings))}
    rows = people_from_holders(held, idle, day, week)
    return PeopleView(rows, shaded, max(newest.values(), default=None))
