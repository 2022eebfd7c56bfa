"""Reading who held what back from the history (schema 3's `holds` table).

- `idle_samples()`: per unit, the polls `core.idle` folds into `idle_since`
  (raw samples joined with their holders);
- `gpu_hours()`: GPU-hours per user over a time range (the people view);
- `trailing_stretches()`: only each unit's current stretch, newest first (what
  `idle_since` needs, cheaply);
- `free_quarters()`: for "usually free by" (core/prediction.py).

What `gpu-tray status`, the tray and the People tab make of these is in
`store/holder_views.py`.

Every function takes an open connection; `open_read_only()` gives one that
can never write, create or upgrade a file (what `gpu-tray status` uses), and
answers None for a missing, foreign, older or damaged file: history is a
bonus there, never a reason to fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from gpu_tray.core.idle import MAX_GAP_S, IdleSample, UnitKey
from gpu_tray.core.settings import IdleSettings

#: How far back `idle_since` looks: the raw samples' retention (48 h).
IDLE_LOOKBACK_S = 48 * 3600

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
    host_now: Mapping[str, float] | None = None,
) -> dict[UnitKey, list[IdleSample]]:
    """Per unit, only the samples of its low, held stretch that reaches the newest
    polls: what `idle_since` needs, read newest first and stopped as soon as every
    unit's stretch is known (a busy GPU costs one row; an idle one, its stretch).
    Units with no sample within MAX_GAP_S of `now` cannot continue to `now`: skipped.
    `host_now` gives some hosts their own "now" (their newest poll, for the People tab)."""
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
    host_now = host_now or {}
    near_of = {uid: host_now.get(key[0], now) - MAX_GAP_S for uid, key in units.items()}
    near = min(near_of.values(), default=now - MAX_GAP_S)
    current: tuple[int, int, int | None] | None = None
    users: list[str] = []

    def take() -> None:
        if current is None:
            return
        ts, uid, util = current
        if uid not in units or uid in done:
            return
        got = found.get(uid)
        if got is None and ts < near_of[uid]:
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
