"""Reading who held what back from the history (schema 3's `holds` table).

- `idle_samples()`: per unit, the polls `core.idle` folds into `idle_since`
  (raw samples joined with their holders);
- `gpu_hours()`: GPU-hours per user over a time range (the people view);
- `free_quarters()`: for "usually free by" (core/prediction.py).

Every function takes an open connection; `open_read_only()` gives one that
can never write, create or upgrade a file (what `gpu-tray status` uses), and
answers None for a missing, foreign, older or damaged file: history is a
bonus there, never a reason to fail.
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

#: The first schema with holds.
HOLDS_VERSION = 3


def open_read_only(path: Path | str) -> sqlite3.Connection | None:
    """A query-only connection to a history file, or None when it has no holds to read."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < HOLDS_VERSION:
            conn.close()
            return None
        conn.execute("SELECT 1 FROM holds LIMIT 1").fetchall()
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def idle_samples(
    conn: sqlite3.Connection, since: float, hosts: Sequence[str] | None = None
) -> dict[UnitKey, list[IdleSample]]:
    """Every raw poll of every unit from `since` on, in time order: held or not, its
    utilisation, and who held it. A unit with no holds row at a poll was not held."""
    rows = conn.execute(
        "SELECT h.name, u.gpu_index, u.mig_index, s.ts, s.util, "
        "  (SELECT group_concat(user, char(31)) FROM "
        "     (SELECT user FROM holds AS d WHERE d.ts = s.ts AND d.unit_id = s.unit_id "
        "      ORDER BY user)), "
        "  EXISTS (SELECT 1 FROM holds AS d WHERE d.ts = s.ts AND d.unit_id = s.unit_id) "
        "FROM samples AS s JOIN units AS u ON u.id = s.unit_id JOIN hosts AS h ON h.id = u.host_id "
        "WHERE s.ts >= ? ORDER BY s.unit_id, s.ts",
        (int(since),),
    )
    wanted = None if hosts is None else set(hosts)
    out: dict[UnitKey, list[IdleSample]] = {}
    for host, gpu, mig, ts, util, users, held in rows:
        if wanted is not None and host not in wanted:
            continue
        names = tuple(u for u in (users or "").split("\x1f") if u)
        out.setdefault((host, gpu, mig), []).append(IdleSample(ts, bool(held), util, names))
    return out


def gpu_hours(conn: sqlite3.Connection, t0: float, t1: float) -> dict[str, float]:
    """GPU-hours per user for polls in [t0, t1): each holds row stands for the `dt`
    seconds before its poll. A unit held by two users counts for both. Processes whose
    owner was not visible are under ''."""
    rows = conn.execute(
        "SELECT user, sum(dt) FROM holds WHERE ts >= ? AND ts < ? GROUP BY user",
        (int(t0), int(t1)),
    )
    return {user: total / 3600 for user, total in rows}


def free_quarters(
    conn: sqlite3.Connection, host: str, t0: float, t1: float
) -> list[tuple[int, bool]]:
    """(15-minute bucket start, whether at least one unit of `host` was free at some poll
    in it) for buckets in [t0, t1), oldest first: what "usually free by" is decided on
    (the 15-minute tier is kept a year)."""
    rows = conn.execute(
        "SELECT ts, any_free FROM host_15m WHERE host_id = (SELECT id FROM hosts WHERE name = ?) "
        "AND ts >= ? AND ts < ? ORDER BY ts",
        (host, int(t0), int(t1)),
    )
    return [(ts, any_free > 0) for ts, any_free in rows]


#: How far back `idle_since` looks: the raw samples' retention (48 h).
IDLE_LOOKBACK_S = 48 * 3600


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
        history = idle_samples(conn, newest - IDLE_LOOKBACK_S, [s.name for s in snaps])
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
    path: Path | str, hosts: Sequence[str], now: float, *, with_samples: bool
) -> TrayExtras:
    """GPU-hours per user over the last day and week, "usually free by" per host in
    `hosts`, and (`with_samples`) the last 48 h of idle samples to seed the tracker.
    Nothing (never an error) from a missing, older or damaged file."""
    empty = TrayExtras({}, {}, {}, {})
    conn = open_read_only(path)
    if conn is None:
        return empty
    try:
        conn.execute("BEGIN")
        samples = idle_samples(conn, now - IDLE_LOOKBACK_S, hosts) if with_samples else {}
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


def people_view(path: Path | str, now: float, settings: IdleSettings) -> PeopleView:
    """Who holds what at each host's newest poll in the history, idle since when, and
    GPU-hours over the last day and week: the people view from history alone (the
    window works without the tray). Nothing from a missing or damaged file."""
    conn = open_read_only(path)
    if conn is None:
        return PeopleView([], {}, None)
    try:
        conn.execute("BEGIN")
        samples = idle_samples(conn, now - IDLE_LOOKBACK_S)
        newest_by_host = dict(
            conn.execute(
                "SELECT h.name, max(s.ts) FROM host_samples AS s "
                "JOIN hosts AS h ON h.id = s.host_id WHERE s.ts >= ? GROUP BY h.name",
                (int(now - IDLE_LOOKBACK_S),),
            )
        )
        day = gpu_hours(conn, now - 86_400, now + 1)
        week = gpu_hours(conn, now - 7 * 86_400, now + 1)
        conn.execute("COMMIT")
    except sqlite3.Error:
        return PeopleView([], {}, None)
    finally:
        conn.close()
    held: dict[UnitKey, tuple[str, ...]] = {}
    idle: dict[UnitKey, float] = {}
    shaded: dict[UnitKey, list[tuple[float, float]]] = {}
    for key, unit in samples.items():
        if found := stretches(unit, settings):
            shaded[key] = found
        last = unit[-1]
        if last.ts != newest_by_host.get(key[0]) or not last.held:
            continue
        held[key] = last.users or (UNKNOWN_USER,)
        if (since := fold(unit, settings).idle_since(last.ts, settings)) is not None:
            idle[key] = since
    rows = people_from_holders(held, idle, day, week)
    return PeopleView(rows, shaded, max(newest_by_host.values(), default=None))
