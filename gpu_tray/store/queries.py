"""The SQL behind `HistoryReader`: which tier answers which part of a range, the rows
of each table, and how they are assembled into series with gaps. Internal to
gpu_tray/store: the reader is the public face."""

from __future__ import annotations

import heapq
import itertools
import math
import sqlite3
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gpu_tray.store.schema import DISK_PCT, MEM_PCT
from gpu_tray.store.series import (
    NAN,
    DiskSeries,
    FreeSeries,
    HealthSeries,
    HostHistory,
    RangeData,
    StateChange,
    UnitInfo,
    UnitSeries,
)
from gpu_tray.store.tiers import (
    RAW,
    QueryPlan,
    Tier,
)

# --- queries ------------------------------------------------------------------


def unit_infos(conn: sqlite3.Connection) -> dict[int, UnitInfo]:
    return {
        row[0]: UnitInfo(*row)
        for row in conn.execute(
            "SELECT u.id, h.name, u.gpu_index, u.mig_index, u.uuid, u.model, u.profile, "
            "u.memory_total_mib FROM units AS u JOIN hosts AS h ON h.id = u.host_id"
        )
    }


def host_ids_for(conn: sqlite3.Connection, hosts: Sequence[str] | None) -> dict[str, int]:
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


def read_unit_rows(
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


def read_host_rows(
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
class HealthRows:
    disks: dict[int, tuple[int, str]]  # disk id -> (host id, path)
    host_rows: list[tuple]  # (t, host_id, load_mean, load_max, cpus, mem_pct_mean, mem_pct_max)
    disk_rows: list[tuple]  # (t, disk_id, pct_mean, pct_max, total)


def read_health(
    conn: sqlite3.Connection, plan: QueryPlan, t0: int, t1: int, hids: Iterable[int] | None
) -> HealthRows:
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
    return HealthRows(disks, host_rows, disk_rows)


def read_states(
    conn: sqlite3.Connection, t0: int, t1: int
) -> list[tuple[int, int, str, str | None]]:
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


def assemble(
    t0: float,
    t1: float,
    plan: QueryPlan,
    units: dict[int, UnitInfo],
    host_ids: dict[str, int],
    unit_rows: list[tuple],
    host_rows: list[tuple],
    state_rows: list[tuple[int, int, str, str | None]],
    health: HealthRows | None = None,
) -> RangeData:
    names = {hid: name for name, hid in host_ids.items()}
    health = health or HealthRows({}, [], [])
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


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_number(v: float) -> str:
    if math.isnan(v):
        return ""
    if v == int(v):
        return str(int(v))
    return f"{v:.3f}".rstrip("0").rstrip(".")
