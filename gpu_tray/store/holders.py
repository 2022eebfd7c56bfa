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
from gpu_tray.core.idle import MAX_GAP_S, IdleSample, UnitKey, fold, idle_map, stretches
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
    units = {
        uid: (host, gpu, mig)
        for uid, host, gpu, mig in conn.execute(
            "SELECT u.id, h.name, u.gpu_index, u.mig_index FROM units AS u "
            "JOIN hosts AS h ON h.id = u.host_id"
        )
        if hosts is None or host in hosts
    }
    # One pass in time order (the samples' primary key order: no sort), each sample
    # with its holders from the holds primary key (so by name); grouped per unit here.
    rows = conn.execute(
        "SELECT s.ts, s.unit_id, s.util, d.user FROM samples AS s "
        "LEFT JOIN holds AS d ON d.ts = s.ts AND d.unit_id = s.unit_id "
        "WHERE s.ts >= ? ORDER BY s.ts, s.unit_id",
        (int(since),),
    )
    out: dict[UnitKey, list[IdleSample]] = {}
    prev: tuple[int, int] | None = None
    users: list[str] = []
    util_prev: int | None = None
    held = False

    def flush() -> None:
        if prev is None or prev[1] not in units:
            return
        names = tuple(u for u in users if u)
        out.setdefault(units[prev[1]], []).append(IdleSample(prev[0], held, util_prev, names))

    for ts, uid, util, user in rows:
        if (ts, uid) != prev:
            flush()
            prev, users, util_prev, held = (ts, uid), [], util, False
        if user is not None:
            held = True
            users.append(user)
    flush()
    return out


def trailing_stretches(
    conn: sqlite3.Connection,
    now: float,
    settings: IdleSettings,
    hosts: Sequence[str] | None = None,
    since: float | None = None,
) -> dict[UnitKey, list[IdleSample]]:
    """Per unit, only the samples of its low, held stretch that reaches the newest
    polls: what `idle_since` needs, read newest first and stopped as soon as every
    unit's stretch is known (a busy GPU costs one row; an idle one, its stretch).
    Units with no sample within MAX_GAP_S of `now` cannot continue to `now`: skipped."""
    units = {
        uid: (host, gpu, mig)
        for uid, host, gpu, mig in conn.execute(
            "SELECT u.id, h.name, u.gpu_index, u.mig_index FROM units AS u "
            "JOIN hosts AS h ON h.id = u.host_id"
        )
        if hosts is None or host in hosts
    }
    floor = now - IDLE_LOOKBACK_S if since is None else since
    rows = conn.execute(
        "SELECT s.ts, s.unit_id, s.util, d.user FROM samples AS s "
        "LEFT JOIN holds AS d ON d.ts = s.ts AND d.unit_id = s.unit_id "
        "WHERE s.ts >= ? ORDER BY s.ts DESC, s.unit_id DESC",
        (int(floor),),
    )
    found: dict[int, list[IdleSample]] = {}
    done: set[int] = set()
    near = now - MAX_GAP_S
    current: tuple[int, int, int | None] | None = None
    users: list[str] = []

    def take() -> None:
        if current is None:
            return
        ts, uid, util = current
        if uid not in units or uid in done:
            return
        got = found.get(uid)
        if got is None and ts < near:
            done.add(uid)  # its newest sample is too old to reach now
            return
        sample = IdleSample(ts, bool(users), util, tuple(sorted(u for u in users if u)))
        low = sample.held and util is not None and util <= settings.max_utilization_pct
        if not low or (got and got[-1].ts - ts > MAX_GAP_S):
            done.add(uid)
            found.setdefault(uid, [])
            return
        found.setdefault(uid, []).append(sample)

    for ts, uid, util, user in rows:
        if current is None or (ts, uid) != current[:2]:
            take()
            if ts < near and all(u in done for u in found):
                current = None
                break
            current, users = (ts, uid, util), []
        if user is not None:
            users.append(user)
    take()
    return {units[uid]: list(reversed(got)) for uid, got in found.items() if got}


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
