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
import math
import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TextIO

from gpu_tray.core.models import DiskUsage, HostHealth
from gpu_tray.store.connection import connect
from gpu_tray.store.queries import (
    HealthRows,
    assemble,
    cluster_free,
    csv_number,
    host_ids_for,
    iso_utc,
    read_health,
    read_host_rows,
    read_states,
    read_unit_rows,
    unit_infos,
)
from gpu_tray.store.series import (
    NAN,
    OK,
    WEEKDAYS,
    DiskSeries,
    FreeSeries,
    HealthSeries,
    Heatmap,
    HostHistory,
    LivePoint,
    LiveUpdate,
    RangeData,
    StateChange,
    UnitInfo,
    UnitSeries,
)
from gpu_tray.store.tiers import (
    DEFAULT_RETENTION,
    Retention,
    plan_for,
)

__all__ = [
    "NAN",
    "OK",
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
            unit_info = unit_infos(conn)
            host_ids = host_ids_for(conn, hosts)
            wanted = set(host_ids) if hosts is not None else None
            if not isinstance(units, bool):
                wanted = set(units) & (wanted if wanted is not None else set(host_ids))
            ids = None if wanted is None else [u.id for u in unit_info.values() if u.host in wanted]
            unit_rows = read_unit_rows(conn, plan, lo, hi, ids) if units else []
            host_rows = read_host_rows(
                conn, plan, lo, hi, None if hosts is None else host_ids.values()
            )
            states = read_states(conn, lo, hi)
            health = HealthRows({}, [], [])
            if units and self._has_health(conn):
                hids = None if wanted is None else [host_ids[h] for h in wanted if h in host_ids]
                health = read_health(conn, plan, lo, hi, hids)
            conn.execute("COMMIT")
        finally:
            conn.close()
        data = assemble(t0, t1, plan, unit_info, host_ids, unit_rows, host_rows, states, health)
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
            units = unit_infos(conn)
            names = {hid: name for name, hid in host_ids_for(conn, hosts).items()}
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
                            csv_number(t),
                            iso_utc(t),
                            host,
                            u.gpu_index,
                            "" if u.mig_index is None else u.mig_index,
                            *(csv_number(v) for v in row),
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
                        csv_number(t),
                        iso_utc(t),
                        name,
                        csv_number(fs.free_mean[i]),
                        csv_number(fs.free_max[i]),
                        csv_number(fs.total[i]),
                    ]
                )
                n += 1
        return n
