"""Reading history back: what the history window and the CSV export ask for.

Every call opens its own short-lived connection (cheap, and safe from any
worker thread) inside one read transaction, so a range is a consistent
snapshot even while the writer commits. Nothing here ever writes.

Values come back as plain lists of floats, NaN where a value is unknown and
at the gaps: where a host was down, or polls stopped (the app was not
running). A plot that draws NaN as a break shows both as gaps.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import math
import sqlite3
import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gpu_tray.core.models import DiskUsage, HostHealth
from gpu_tray.store.connection import connect
from gpu_tray.store.schema import DISK_PCT, MEM_PCT
from gpu_tray.store.tiers import (
    DEFAULT_RETENTION,
    RAW,
    QueryPlan,
    Retention,
    Tier,
    plan_for,
)

NAN = math.nan
OK = "ok"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class UnitInfo:
    id: int
    host: str
    gpu_index: int
    mig_index: int | None
    uuid: str
    model: str
    profile: str | None
    memory_total_mib: int | None

    @property
    def key(self) -> tuple[int, int]:
        """Sort order and colour identity: (GPU index, MIG index or -1)."""
        return (self.gpu_index, -1 if self.mig_index is None else self.mig_index)

    @property
    def label(self) -> str:
        if self.mig_index is None:
            return f"GPU {self.gpu_index}"
        profile = f" ({self.profile})" if self.profile else ""
        return f"GPU {self.gpu_index} MIG {self.mig_index}{profile}"


@dataclass(slots=True)
class UnitSeries:
    unit: UnitInfo
    t: list[float] = field(default_factory=list)
    util_mean: list[float] = field(default_factory=list)
    util_max: list[float] = field(default_factory=list)
    mem_mean: list[float] = field(default_factory=list)
    mem_max: list[float] = field(default_factory=list)
    temp_mean: list[float] = field(default_factory=list)
    temp_max: list[float] = field(default_factory=list)

    COLUMNS = ("util_mean", "util_max", "mem_mean", "mem_max", "temp_mean", "temp_max")


@dataclass(slots=True)
class FreeSeries:
    t: list[float] = field(default_factory=list)
    free_mean: list[float] = field(default_factory=list)
    free_max: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)

    COLUMNS = ("free_mean", "free_max", "total")


@dataclass(slots=True)
class HealthSeries:
    """A host's load and RAM use (per cent) over time; NaN where unknown or at gaps."""

    t: list[float] = field(default_factory=list)
    load_mean: list[float] = field(default_factory=list)
    load_max: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    mem_pct_mean: list[float] = field(default_factory=list)
    mem_pct_max: list[float] = field(default_factory=list)

    COLUMNS = ("load_mean", "load_max", "cpus", "mem_pct_mean", "mem_pct_max")


@dataclass(slots=True)
class DiskSeries:
    """One disk path of a host: per cent used as df prints it, and its size."""

    path: str
    t: list[float] = field(default_factory=list)
    pct_mean: list[float] = field(default_factory=list)
    pct_max: list[float] = field(default_factory=list)
    total_mib: list[float] = field(default_factory=list)

    COLUMNS = ("pct_mean", "pct_max", "total_mib")


@dataclass(frozen=True, slots=True)
class StateChange:
    ts: int
    state: str
    message: str | None

    @property
    def ok(self) -> bool:
        return self.state == OK


@dataclass(slots=True)
class HostHistory:
    host: str
    units: list[UnitSeries]
    free: FreeSeries
    # Changes inside the range, preceded by the one in force at its start (if any).
    states: list[StateChange]
    # Typical seconds between points: longer silences are drawn as gaps.
    gap_s: float
    # Every whole GPU the host has reported (even with no series asked for).
    gpus: list[UnitInfo] = field(default_factory=list)
    # Load, RAM and disks: read with the per-unit series (`units` of load_range).
    health: HealthSeries = field(default_factory=HealthSeries)
    disks: list[DiskSeries] = field(default_factory=list)


@dataclass(slots=True)
class RangeData:
    t0: float
    t1: float
    plan: QueryPlan
    hosts: dict[str, HostHistory]
    cluster: FreeSeries


@dataclass(slots=True)
class Heatmap:
    """Hour of day x weekday (local time): the share of polls with at least one free unit.

    `fraction[d][h]` is None where there is no data; d = 0 is Monday.
    """

    host: str
    t0: float
    t1: float
    fraction: list[list[float | None]]
    polls: list[list[int]]


@dataclass(slots=True)
class LivePoint:
    host: str
    ts: int
    free: int
    total: int
    # unit id -> (util, mem, temp), None where unknown
    values: dict[int, tuple[int | None, int | None, int | None]]
    # The host's load, RAM and disks at that poll, when stored.
    health: HostHealth | None = None


@dataclass(slots=True)
class LiveUpdate:
    units: dict[int, UnitInfo]
    points: list[LivePoint]
    states: list[tuple[str, StateChange]]
    newest: int | None


class HistoryReader:
    def __init__(self, path: Path | str, retention: Retention = DEFAULT_RETENTION) -> None:
        self.path = Path(path)
        self.retention = retention

    def _connect(self) -> sqlite3.Connection | None:
        """None when there is no history yet. Never creates the file."""
        if not self.path.exists():
            return None
        conn = connect(self.path)
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < 2:  # not written yet, or not upgraded yet: nothing to show
            conn.close()
            return None
        return conn

    @staticmethod
    def _has_health(conn: sqlite3.Connection) -> bool:
        """Schema 3 and later (a file not upgraded yet by the writer has no health)."""
        return conn.execute("PRAGMA user_version").fetchone()[0] >= 3

    # --- the window -----------------------------------------------------------

    def hosts(self) -> list[str]:
        conn = self._connect()
        if conn is None:
            return []
        try:
            return [r[0] for r in conn.execute("SELECT name FROM hosts ORDER BY name")]
        finally:
            conn.close()

    def load_range(
        self,
        t0: float,
        t1: float,
        hosts: Sequence[str] | None = None,
        *,
        units: bool | Collection[str] = True,
    ) -> RangeData:
        """What the window draws for [t0, t1): free counts per host and for the
        cluster, state changes, and the per-unit series of every host (`units`
        True), of none (False) or of the hosts named in `units`.

        The per-unit series are most of the rows: a window asks for them only
        for the hosts it shows."""
        plan = plan_for(t1 - t0, self.retention)
        conn = self._connect()
        if conn is None:
            return RangeData(t0, t1, plan, {}, FreeSeries())
        lo, hi = int(t0), math.ceil(t1)
        try:
            conn.execute("BEGIN")
            unit_info = _units(conn)
            host_ids = _host_ids(conn, hosts)
            wanted = set(host_ids) if hosts is not None else None
            if not isinstance(units, bool):
                wanted = set(units) & (wanted if wanted is not None else set(host_ids))
            ids = None if wanted is None else [u.id for u in unit_info.values() if u.host in wanted]
            unit_rows = _unit_rows(conn, plan, lo, hi, ids) if units else []
            host_rows = _host_rows(conn, plan, lo, hi, None if hosts is None else host_ids.values())
            states = _states(conn, lo, hi)
            health = _Health({}, [], [])
            if units and self._has_health(conn):
                hids = None if wanted is None else [host_ids[h] for h in wanted if h in host_ids]
                health = _health(conn, plan, lo, hi, hids)
            conn.execute("COMMIT")
        finally:
            conn.close()
        data = _assemble(t0, t1, plan, unit_info, host_ids, unit_rows, host_rows, states, health)
        return data

    def heatmap(self, host: str, t0: float, t1: float) -> Heatmap:
        """When is at least one unit free on `host`, by weekday and hour (local time),
        from the 15-minute tier (15-minute buckets never straddle a local hour)."""
        fraction: list[list[float | None]] = [[None] * 24 for _ in range(7)]
        polls = [[0] * 24 for _ in range(7)]
        conn = self._connect()
        if conn is None:
            return Heatmap(host, t0, t1, fraction, polls)
        try:
            rows = conn.execute(
                "SELECT CAST(strftime('%w', ts, 'unixepoch', 'localtime') AS INTEGER) AS dow, "
                "CAST(strftime('%H', ts, 'unixepoch', 'localtime') AS INTEGER) AS hour, "
                "sum(any_free), sum(n) FROM host_15m "
                "WHERE host_id = (SELECT id FROM hosts WHERE name = ?) AND ts >= ? AND ts < ? "
                "GROUP BY dow, hour",
                (host, int(t0), math.ceil(t1)),
            ).fetchall()
        finally:
            conn.close()
        for dow, hour, any_free, n in rows:
            day = (dow + 6) % 7  # SQLite: 0 = Sunday
            if n:
                fraction[day][hour] = any_free / n
                polls[day][hour] = n
        return Heatmap(host, t0, t1, fraction, polls)

    def raw_since(self, since: float, hosts: Sequence[str] | None = None) -> LiveUpdate:
        """Polls stored after `since` (for a window that follows a database another
        process writes)."""
        conn = self._connect()
        if conn is None:
            return LiveUpdate({}, [], [], None)
        try:
            conn.execute("BEGIN")
            units = _units(conn)
            names = {hid: name for name, hid in _host_ids(conn, hosts).items()}
            lo = math.floor(since) + 1
            free_rows = conn.execute(
                "SELECT ts, host_id, free, total FROM host_samples WHERE ts >= ? ORDER BY ts",
                (lo,),
            ).fetchall()
            sample_rows = conn.execute(
                "SELECT ts, unit_id, util, mem, temp FROM samples WHERE ts >= ?", (lo,)
            ).fetchall()
            state_rows = conn.execute(
                "SELECT host_id, ts, state, message FROM host_states WHERE ts >= ? ORDER BY ts",
                (lo,),
            ).fetchall()
            health_rows, disk_rows = [], []
            if self._has_health(conn):
                health_rows = conn.execute(
                    "SELECT ts, host_id, load1, cpus, mem_total, mem_used FROM health_samples "
                    "WHERE ts >= ?",
                    (lo,),
                ).fetchall()
                disk_rows = conn.execute(
                    "SELECT s.ts, d.host_id, d.path, s.total, s.used, s.avail "
                    "FROM disk_samples AS s JOIN disks AS d ON d.id = s.disk_id WHERE s.ts >= ?",
                    (lo,),
                ).fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()
        points: dict[tuple[int, int], LivePoint] = {}
        out: list[LivePoint] = []
        for ts, hid, free, total in free_rows:
            if hid in names:
                p = LivePoint(names[hid], ts, free, total, {})
                points[(hid, ts)] = p
                out.append(p)
        disks: dict[tuple[int, int], list[DiskUsage]] = {}
        for ts, hid, path, total, used, avail in disk_rows:
            disks.setdefault((hid, ts), []).append(DiskUsage(path, total, used, avail))
        for ts, hid, load1, cpus, mem_total, mem_used in health_rows:
            if (p := points.get((hid, ts))) is not None:
                found = sorted(disks.get((hid, ts), ()), key=lambda d: (d.path != "/", d.path))
                p.health = HostHealth(
                    load1=load1,
                    cpus=cpus,
                    mem_total_mib=mem_total,
                    mem_used_mib=mem_used,
                    disks=tuple(found),
                )
        hid_by_name = {name: hid for hid, name in names.items()}
        for ts, uid, util, mem, temp in sample_rows:
            unit = units.get(uid)
            if unit is not None and (p := points.get((hid_by_name.get(unit.host, -1), ts))):
                p.values[uid] = (util, mem, temp)
        states = [
            (names[hid], StateChange(ts, state, message))
            for hid, ts, state, message in state_rows
            if hid in names
        ]
        newest = max([p.ts for p in out] + [s.ts for _, s in states], default=None)
        return LiveUpdate(units, out, states, newest)

    # --- CSV ------------------------------------------------------------------

    def export_units_csv(
        self, out: TextIO, t0: float, t1: float, hosts: Sequence[str] | None = None
    ) -> int:
        """The per-GPU data behind the plots of [t0, t1), at the resolution they use.
        Returns the number of data rows."""
        data = self.load_range(t0, t1, hosts)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "epoch_s",
                "time_utc",
                "host",
                "gpu",
                "mig",
                "utilization_pct_mean",
                "utilization_pct_max",
                "memory_used_mib_mean",
                "memory_used_mib_max",
                "temperature_c_mean",
                "temperature_c_max",
            ]
        )
        n = 0
        for host in sorted(data.hosts):
            for s in data.hosts[host].units:
                u = s.unit
                for i, t in enumerate(s.t):
                    row = [getattr(s, c)[i] for c in UnitSeries.COLUMNS]
                    if all(math.isnan(v) for v in row):
                        continue  # a gap marker, or nothing known
                    w.writerow(
                        [
                            _num(t),
                            _iso(t),
                            host,
                            u.gpu_index,
                            "" if u.mig_index is None else u.mig_index,
                            *(_num(v) for v in row),
                        ]
                    )
                    n += 1
        return n

    def export_free_csv(
        self,
        out: TextIO,
        t0: float,
        t1: float,
        hosts: Sequence[str] | None = None,
        cluster: bool = False,
    ) -> int:
        """Free-unit counts of [t0, t1) per host, and for all of them together
        (host "(all hosts)") when `cluster`."""
        data = self.load_range(t0, t1, hosts)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["epoch_s", "time_utc", "host", "free_mean", "free_max", "total"])
        n = 0
        series: list[tuple[str, FreeSeries]] = [(h, data.hosts[h].free) for h in sorted(data.hosts)]
        if cluster:
            series.append(("(all hosts)", data.cluster))
        for name, fs in series:
            for i, t in enumerate(fs.t):
                if math.isnan(fs.free_mean[i]):
                    continue
                w.writerow(
                    [
                        _num(t),
                        _iso(t),
                        name,
                        _num(fs.free_mean[i]),
                        _num(fs.free_max[i]),
                        _num(fs.total[i]),
                    ]
                )
                n += 1
        return n


# --- queries ------------------------------------------------------------------


def _units(conn: sqlite3.Connection) -> dict[int, UnitInfo]:
    return {
        row[0]: UnitInfo(*row)
        for row in conn.execute(
            "SELECT u.id, h.name, u.gpu_index, u.mig_index, u.uuid, u.model, u.profile, "
            "u.memory_total_mib FROM units AS u JOIN hosts AS h ON h.id = u.host_id"
        )
    }


def _host_ids(conn: sqlite3.Connection, hosts: Sequence[str] | None) -> dict[str, int]:
    ids = dict(conn.execute("SELECT name, id FROM hosts"))
    if hosts is None:
        return ids
    return {h: ids[h] for h in hosts if h in ids}


def _done_until(conn: sqlite3.Connection, tier: Tier) -> int | None:
    row = conn.execute(
        "SELECT done_until FROM rollup_state WHERE tier = ?", (tier.name,)
    ).fetchone()
    return None if row is None else row[0]


def _split(
    conn: sqlite3.Connection, plan: QueryPlan, t0: int, t1: int
) -> list[tuple[Tier, int, int]]:
    """Where each part of [t0, t1) is read from: the plan's tier up to what has been
    rolled up, and raw polls after that (the last minutes of an aggregate range)."""
    if plan.tier is RAW:
        return [(RAW, t0, t1)]
    done = _done_until(conn, plan.tier)
    if done is None:
        return [(RAW, t0, t1)]
    b = plan.resolution_s
    split = max(t0, min(t1, done - done % b))
    parts = []
    if split > t0:
        parts.append((plan.tier, t0, split))
    if t1 > split:
        parts.append((RAW, split, t1))
    return parts


def _only(column: str, ids: Iterable[int] | None) -> str:
    """An extra WHERE term limiting rows to some ids (integers from the database itself)."""
    if ids is None:
        return ""
    return f" AND {column} IN ({','.join(str(int(i)) for i in ids) or 'NULL'})"


def _unit_rows(
    conn: sqlite3.Connection, plan: QueryPlan, t0: int, t1: int, ids: Iterable[int] | None
) -> list[tuple]:
    rows: list[tuple] = []
    b = plan.bucket_s
    where = "WHERE ts >= ? AND ts < ?" + _only("unit_id", ids)
    for tier, lo, hi in _split(conn, plan, t0, t1):
        if tier is RAW and b is None:
            sql = f"SELECT ts, unit_id, util, util, mem, mem, temp, temp FROM samples {where}"
        elif tier is RAW:
            sql = (
                f"SELECT (ts / {b}) * {b} AS t, unit_id, avg(util), max(util), avg(mem), "
                f"max(mem), avg(temp), max(temp) FROM samples {where} GROUP BY t, unit_id"
            )
        elif b == tier.step_s:
            sql = (
                "SELECT ts, unit_id, util_mean, util_max, mem_mean, mem_max, temp_mean, "
                f"temp_max FROM {tier.unit_table} {where}"
            )
        else:
            sql = (
                f"SELECT (ts / {b}) * {b} AS t, unit_id, avg(util_mean), max(util_max), "
                "avg(mem_mean), max(mem_max), avg(temp_mean), max(temp_max) "
                f"FROM {tier.unit_table} {where} GROUP BY t, unit_id"
            )
        rows.extend(conn.execute(sql, (lo, hi)))
    return rows


def _host_rows(
    conn: sqlite3.Connection, plan: QueryPlan, t0: int, t1: int, ids: Iterable[int] | None
) -> list[tuple]:
    rows: list[tuple] = []
    b = plan.bucket_s
    where = "WHERE ts >= ? AND ts < ?" + _only("host_id", ids)
    for tier, lo, hi in _split(conn, plan, t0, t1):
        if tier is RAW and b is None:
            sql = f"SELECT ts, host_id, 1, free, free, total FROM host_samples {where}"
        elif tier is RAW:
            sql = (
                f"SELECT (ts / {b}) * {b} AS t, host_id, count(*), sum(free), max(free), "
                f"max(total) FROM host_samples {where} GROUP BY t, host_id"
            )
        else:
            sql = (
                f"SELECT (ts / {b}) * {b} AS t, host_id, sum(n), sum(free_sum), max(free_max), "
                f"max(total) FROM {tier.host_table} {where} GROUP BY t, host_id"
            )
        rows.extend(conn.execute(sql, (lo, hi)))
    return rows


@dataclass(slots=True)
class _Health:
    disks: dict[int, tuple[int, str]]  # disk id -> (host id, path)
    host_rows: list[tuple]  # (t, host_id, load_mean, load_max, cpus, mem_pct_mean, mem_pct_max)
    disk_rows: list[tuple]  # (t, disk_id, pct_mean, pct_max, total)


def _health(
    conn: sqlite3.Connection, plan: QueryPlan, t0: int, t1: int, hids: Iterable[int] | None
) -> _Health:
    """Load, RAM and disk rows of [t0, t1) at the plan's resolution, as for the GPUs."""
    hids = None if hids is None else list(hids)
    disks = {
        did: (hid, path)
        for did, hid, path in conn.execute(
            "SELECT id, host_id, path FROM disks WHERE 1" + _only("host_id", hids)
        )
    }
    b = plan.bucket_s
    h_where = "WHERE ts >= ? AND ts < ?" + _only("host_id", hids)
    d_where = "WHERE ts >= ? AND ts < ?" + _only("disk_id", None if hids is None else disks)
    host_rows: list[tuple] = []
    disk_rows: list[tuple] = []
    for tier, lo, hi in _split(conn, plan, t0, t1):
        if tier is RAW and b is None:
            h_sql = (
                f"SELECT ts, host_id, load1, load1, cpus, {MEM_PCT}, {MEM_PCT} "
                f"FROM health_samples {h_where}"
            )
            d_sql = f"SELECT ts, disk_id, {DISK_PCT}, {DISK_PCT}, total FROM disk_samples {d_where}"
        elif tier is RAW:
            h_sql = (
                f"SELECT (ts / {b}) * {b} AS t, host_id, avg(load1), max(load1), max(cpus), "
                f"avg({MEM_PCT}), max({MEM_PCT}) FROM health_samples {h_where} "
                "GROUP BY t, host_id"
            )
            d_sql = (
                f"SELECT (ts / {b}) * {b} AS t, disk_id, avg({DISK_PCT}), max({DISK_PCT}), "
                f"max(total) FROM disk_samples {d_where} GROUP BY t, disk_id"
            )
        elif b == tier.step_s:
            h_sql = (
                "SELECT ts, host_id, load_mean, load_max, cpus, mem_pct_mean, mem_pct_max "
                f"FROM {tier.health_table} {h_where}"
            )
            d_sql = f"SELECT ts, disk_id, pct_mean, pct_max, total FROM {tier.disk_table} {d_where}"
        else:
            h_sql = (
                f"SELECT (ts / {b}) * {b} AS t, host_id, avg(load_mean), max(load_max), "
                f"max(cpus), avg(mem_pct_mean), max(mem_pct_max) FROM {tier.health_table} "
                f"{h_where} GROUP BY t, host_id"
            )
            d_sql = (
                f"SELECT (ts / {b}) * {b} AS t, disk_id, avg(pct_mean), max(pct_max), "
                f"max(total) FROM {tier.disk_table} {d_where} GROUP BY t, disk_id"
            )
        host_rows.extend(conn.execute(h_sql, (lo, hi)))
        disk_rows.extend(conn.execute(d_sql, (lo, hi)))
    return _Health(disks, host_rows, disk_rows)


def _states(conn: sqlite3.Connection, t0: int, t1: int) -> list[tuple[int, int, str, str | None]]:
    """State changes in [t0, t1), plus the one each host was in at t0."""
    before = conn.execute(
        "SELECT host_id, max(ts), state, message FROM host_states WHERE ts < ? GROUP BY host_id",
        (t0,),
    ).fetchall()
    inside = conn.execute(
        "SELECT host_id, ts, state, message FROM host_states WHERE ts >= ? AND ts < ? ORDER BY ts",
        (t0, t1),
    ).fetchall()
    return before + inside


# --- assembling series --------------------------------------------------------


def _assemble(
    t0: float,
    t1: float,
    plan: QueryPlan,
    units: dict[int, UnitInfo],
    host_ids: dict[str, int],
    unit_rows: list[tuple],
    host_rows: list[tuple],
    state_rows: list[tuple[int, int, str, str | None]],
    health: _Health | None = None,
) -> RangeData:
    names = {hid: name for name, hid in host_ids.items()}
    health = health or _Health({}, [], [])
    health_by_host: dict[int, list[tuple]] = {}
    for row in health.host_rows:
        health_by_host.setdefault(row[1], []).append(row)
    disk_rows: dict[int, list[tuple]] = {}
    for row in health.disk_rows:
        disk_rows.setdefault(row[1], []).append(row)
    free_by_host: dict[int, list[tuple]] = {}
    for row in host_rows:
        if row[1] in names:
            free_by_host.setdefault(row[1], []).append(row)
    by_unit: dict[int, list[tuple]] = {}
    for row in unit_rows:
        unit = units.get(row[1])
        if unit is not None and unit.host in host_ids:
            by_unit.setdefault(row[1], []).append(row)
    states_by_host: dict[int, list[StateChange]] = {}
    for hid, ts, state, message in state_rows:
        if hid in names:
            states_by_host.setdefault(hid, []).append(StateChange(ts, state, message))

    resolution = plan.resolution_s
    hosts: dict[str, HostHistory] = {}
    for hid, name in names.items():
        frows = sorted(free_by_host.get(hid, ()), key=_first)
        host_units = sorted(
            (u for u in units.values() if u.host == name and u.id in by_unit),
            key=lambda u: u.key,
        )
        states = states_by_host.get(hid, [])
        hrows = sorted(health_by_host.get(hid, ()), key=_first)
        if not frows and not host_units and not hrows and not any(s.ts >= t0 for s in states):
            continue
        gap_s = _gap_threshold([r[0] for r in frows], resolution)
        breaks = [s.ts for s in states if not s.ok and s.ts >= t0]
        free = FreeSeries()
        _fill(
            free,
            [(r[0], r[3] / r[2], r[4], r[5]) for r in frows],
            FreeSeries.COLUMNS,
            gap_s,
            breaks,
        )
        series = []
        for unit in host_units:
            s = UnitSeries(unit)
            rows = sorted(by_unit[unit.id], key=_first)
            _fill(s, [r[:1] + r[2:] for r in rows], UnitSeries.COLUMNS, gap_s, breaks)
            series.append(s)
        gpus = sorted(
            (u for u in units.values() if u.host == name and u.mig_index is None),
            key=lambda u: u.key,
        )
        # Health is read in every state a host answers in (nvidia-smi failing too), so its
        # lines break where its own polls stop, not where the host's state changes.
        health_gap = _gap_threshold([r[0] for r in hrows], resolution)
        hseries = HealthSeries()
        _fill(hseries, [r[:1] + r[2:] for r in hrows], HealthSeries.COLUMNS, health_gap, [])
        dseries = []
        for did, (dhid, path) in sorted(health.disks.items(), key=lambda d: d[1][1]):
            if dhid == hid and did in disk_rows:
                ds = DiskSeries(path)
                rows = sorted(disk_rows[did], key=_first)
                _fill(ds, [r[:1] + r[2:] for r in rows], DiskSeries.COLUMNS, health_gap, [])
                dseries.append(ds)
        dseries.sort(key=lambda d: (d.path != "/", d.path))  # "/" first, as df is asked
        hosts[name] = HostHistory(name, series, free, states, gap_s, gpus, hseries, dseries)
    return RangeData(t0, t1, plan, hosts, cluster_free(hosts.values(), t1))


def _first(row: tuple) -> int:
    return row[0]


def _gap_threshold(ts: list[int], resolution: int) -> float:
    """Silences longer than this are gaps: a few typical steps between points."""
    step = float(resolution)
    if len(ts) > 2:
        step = max(step, statistics.median(b - a for a, b in itertools.pairwise(ts)))
    return 2.5 * step


def _fill(
    target: object,
    rows: list[tuple],
    columns: Sequence[str],
    gap_s: float,
    breaks: Sequence[int],
) -> None:
    """Append rows (t, *values) to target's lists, with a NaN row at each gap and break."""
    t_out: list[float] = target.t  # type: ignore[attr-defined]
    outs = [getattr(target, c) for c in columns]
    ts = [r[0] for r in rows]
    # Where a NaN row goes: (index of the row it precedes, its time).
    gaps: list[tuple[int, float]] = []
    bi = 0
    prev: float | None = None
    for i, t in enumerate(ts):
        gap_at = None
        while bi < len(breaks) and breaks[bi] <= t:
            if gap_at is None and prev is not None and breaks[bi] > prev:
                gap_at = breaks[bi]
            bi += 1
        if gap_at is None and prev is not None and t - prev > gap_s:
            gap_at = prev + gap_s / 2.5
        if gap_at is not None:
            gaps.append((i, float(gap_at)))
        prev = t
    # Down at the end of the range: say so, or the last value would seem to hold.
    while prev is not None and bi < len(breaks):
        if breaks[bi] > prev:
            gaps.append((len(ts), float(breaks[bi])))
            break
        bi += 1
    cols = [
        [NAN if v is None else v for v in col]
        for col in (list(zip(*rows, strict=True))[1:] if rows else [() for _ in columns])
    ]
    start = 0
    for i, t in [*gaps, (len(ts), None)]:
        t_out.extend(ts[start:i])
        for out, col in zip(outs, cols, strict=True):
            out.extend(col[start:i])
        if t is not None:
            t_out.append(t)
            for out in outs:
                out.append(NAN)
        start = i


def cluster_free(hosts: Iterable[HostHistory], until: float = math.inf) -> FreeSeries:
    """Free units over all hosts: each host's count holds until its next point, and
    counts as nothing once it is older than that host's gap threshold or the host went
    down. NaN where no host has data. Nothing is said about times after `until`."""
    events: list[tuple[float, int, int, float, float]] = []  # (t, kind, host, free, total)
    hlist = list(hosts)
    for h, hist in enumerate(hlist):
        fs = hist.free
        for i, t in enumerate(fs.t):
            if math.isnan(fs.free_mean[i]):
                events.append((t, 0, h, NAN, NAN))  # a gap: the host drops out here
            else:
                events.append((t, 1, h, fs.free_mean[i], fs.total[i]))
    events.sort()
    out = FreeSeries()
    cur_free = [0.0] * len(hlist)
    cur_total = [0.0] * len(hlist)
    live = [False] * len(hlist)
    version = [0] * len(hlist)
    expiry: list[tuple[float, int, int]] = []
    sum_free = sum_total = 0.0
    n_live = 0

    def drop(h: int) -> None:
        nonlocal sum_free, sum_total, n_live
        if live[h]:
            sum_free -= cur_free[h]
            sum_total -= cur_total[h]
            live[h] = False
            n_live -= 1

    def emit(t: float) -> None:
        if out.t and out.t[-1] == t:
            for col in (out.t, out.free_mean, out.free_max, out.total):
                col.pop()
        v = NAN if n_live == 0 else sum_free
        out.t.append(t)
        out.free_mean.append(v)
        out.free_max.append(v)
        out.total.append(NAN if n_live == 0 else sum_total)

    for t, kind, h, free, total in events:
        while expiry and expiry[0][0] < t:
            et, eh, ev = heapq.heappop(expiry)
            if ev == version[eh] and live[eh]:
                drop(eh)
                emit(et)
        drop(h)
        version[h] += 1
        if kind == 1:
            cur_free[h], cur_total[h] = free, total
            live[h] = True
            n_live += 1
            sum_free += free
            sum_total += total
            heapq.heappush(expiry, (t + hlist[h].gap_s, h, version[h]))
        emit(t)
    while expiry and expiry[0][0] < until:
        et, eh, ev = heapq.heappop(expiry)
        if ev == version[eh] and live[eh]:
            drop(eh)
            emit(et)
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(v: float) -> str:
    if math.isnan(v):
        return ""
    if v == int(v):
        return str(int(v))
    return f"{v:.3f}".rstrip("0").rstrip(".")


__all__ = [
    "WEEKDAYS",
    "DiskSeries",
    "FreeSeries",
    "HealthSeries",
    "Heatmap",
    "HistoryReader",
    "HostHistory",
    "LivePoint",
    "LiveUpdate",
    "RangeData",
    "StateChange",
    "UnitInfo",
    "UnitSeries",
    "cluster_free",
]
