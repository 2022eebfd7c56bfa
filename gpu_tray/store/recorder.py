"""Snapshots in, rows out: the synchronous core of the history writer.

`Recorder.write()` stores a batch of snapshots in one transaction;
`Recorder.maintain()` rolls up what is new and applies retention in another.
Both are incremental: a rollup reads only the raw rows of buckets that have
completed since the last one (plus any bucket a late sample landed in), and
retention deletes a contiguous run of the oldest rows. Nothing ever rescans
the whole history.

Not thread-safe: one Recorder per connection, used from one thread
(`HistoryWriter`'s, or a benchmark's).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpu_tray.core.availability import ThresholdsFor, host_units
from gpu_tray.core.idle import MAX_GAP_S
from gpu_tray.core.models import GpuProcess, HostHealth, HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.store.schema import DISK_PCT, MEM_PCT
from gpu_tray.store.tiers import AGGREGATES, DEFAULT_RETENTION, RAW, Retention, Tier

log = logging.getLogger("gpu_tray.store")

# A bucket is rolled up this long after it ends, so polls still in flight land first.
GRACE_S = 30
# Never trust a snapshot clock far in the future for retention.
FUTURE_SLACK_S = 3600
# Pages handed back to the file system per maintenance pass (16 MB of 4 KiB pages).
VACUUM_PAGES = 4096


def _default_thresholds(_host: str) -> FreeThresholds:
    return FreeThresholds()


def _int(value: object) -> int | None:
    if type(value) is int:
        return value
    if value is NA or value is None:
        return None
    try:
        return round(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(slots=True)
class _Unit:
    id: int
    uuid: str
    model: str
    profile: str | None
    memory_total_mib: int | None


class Recorder:
    def __init__(
        self,
        conn: sqlite3.Connection,
        thresholds_for: ThresholdsFor | None = None,
        retention: Retention = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.thresholds_for = thresholds_for or _default_thresholds
        self.retention = retention
        self.clock = clock
        self.load_caches()

    # --- caches -----------------------------------------------------------------

    def load_caches(self) -> None:
        """(Re)read what the Recorder remembers between batches from the database."""
        c = self.conn
        self._hosts: dict[str, int] = dict(c.execute("SELECT name, id FROM hosts"))
        self._units: dict[tuple[int, int, int | None], _Unit] = {}
        for uid, hid, gpu, mig, uuid, model, profile, mem in c.execute(
            "SELECT id, host_id, gpu_index, mig_index, uuid, model, profile, memory_total_mib "
            "FROM units"
        ):
            self._units[(hid, gpu, mig)] = _Unit(uid, uuid, model, profile, mem)
        self._disks: dict[tuple[int, str], int] = {
            (hid, path): did for did, hid, path in c.execute("SELECT id, host_id, path FROM disks")
        }
        self._last_state: dict[int, tuple[str, str | None]] = {}
        for hid, state, message in c.execute(
            "SELECT host_id, state, message FROM host_states AS s "
            "WHERE ts = (SELECT max(ts) FROM host_states WHERE host_id = s.host_id)"
        ):
            self._last_state[hid] = (state, message)
        self.done_until: dict[str, int | None] = {t.name: None for t in AGGREGATES}
        for tier, done in c.execute("SELECT tier, done_until FROM rollup_state"):
            self.done_until[tier] = done
        newest = [
            c.execute(f"SELECT max(ts) FROM {table}").fetchone()[0]
            for table in ("samples", "host_samples", "host_states", "health_samples")
        ]
        self.max_ts: int | None = max((t for t in newest if t is not None), default=None)
        # A host's previous answered poll: what a holds row's `dt` counts from.
        self._last_poll: dict[int, int] = dict(
            c.execute("SELECT host_id, max(ts) FROM host_samples GROUP BY host_id")
        )
        self.raw_floor = self._raw_cutoff()
        self._dirty: dict[str, set[int]] = {t.name: set() for t in AGGREGATES}

    def _host_id(self, name: str) -> int:
        hid = self._hosts.get(name)
        if hid is None:
            hid = self.conn.execute("INSERT INTO hosts (name) VALUES (?)", (name,)).lastrowid
            assert hid is not None
            self._hosts[name] = hid
        return hid

    def _disk_id(self, hid: int, path: str) -> int:
        did = self._disks.get((hid, path))
        if did is None:
            did = self.conn.execute(
                "INSERT INTO disks (host_id, path) VALUES (?, ?)", (hid, path)
            ).lastrowid
            assert did is not None
            self._disks[(hid, path)] = did
        return did

    def _unit_id(
        self,
        hid: int,
        gpu: int,
        mig: int | None,
        uuid: str,
        model: str,
        profile: str | None,
        memory_total: object,
    ) -> int:
        unit = self._units.get((hid, gpu, mig))
        if (
            unit is not None
            and unit.uuid == uuid
            and unit.model == model
            and unit.profile == profile
            and unit.memory_total_mib == memory_total
        ):
            return unit.id  # the common case: nothing changed since the last poll
        mem = _int(memory_total)
        if unit is None:
            uid = self.conn.execute(
                "INSERT INTO units (host_id, gpu_index, mig_index, uuid, model, profile, "
                "memory_total_mib) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (hid, gpu, mig, uuid, model, profile, mem),
            ).lastrowid
            assert uid is not None
            self._units[(hid, gpu, mig)] = _Unit(uid, uuid, model, profile, mem)
            return uid
        if (unit.uuid, unit.model, unit.profile, unit.memory_total_mib) != (
            uuid,
            model,
            profile,
            mem,
        ):
            # A GPU swapped or a MIG layout changed: the label follows the newest one.
            self.conn.execute(
                "UPDATE units SET uuid = ?, model = ?, profile = ?, memory_total_mib = ? "
                "WHERE id = ?",
                (uuid, model, profile, mem, unit.id),
            )
            unit.uuid, unit.model, unit.profile, unit.memory_total_mib = uuid, model, profile, mem
        return unit.id

    # --- writing ----------------------------------------------------------------

    def write(self, snaps: Iterable[HostSnapshot]) -> int:
        """Store snapshots in one transaction. Returns how many were stored
        (a snapshot older than the raw retention is dropped: it could only
        spoil a finished aggregate)."""
        samples: list[tuple[int, int, int | None, int | None, int | None]] = []
        hosts: list[tuple[int, int, int, int]] = []
        states: list[tuple[int, int, str, str | None]] = []
        holds: list[tuple[int, int, str, int, int]] = []
        health: list[tuple[int, int, float | None, int | None, int | None, int | None]] = []
        disks: list[tuple[int, int, int | None, int | None, int | None]] = []
        stored = 0
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for snap in snaps:
                ts = int(snap.polled_at.timestamp())
                if self.raw_floor is not None and ts < self.raw_floor:
                    continue
                stored += 1
                hid = self._host_id(snap.name)
                key = (snap.state.value, snap.message)
                if self._last_state.get(hid) != key:
                    states.append((hid, ts, key[0], key[1]))
                    self._last_state[hid] = key
                if snap.state is HostState.OK and not snap.stale:
                    self._rows(snap, hid, ts, samples, hosts, holds)
                    self._note_late(ts)
                if snap.health is not None:
                    # Read by this very poll (never carried over from an older one), so it
                    # is kept whatever the state: a host whose nvidia-smi fails has RAM too.
                    self._health_rows(snap.health, hid, ts, health, disks)
                    self._note_late(ts)
                if self.max_ts is None or ts > self.max_ts:
                    self.max_ts = ts
            c = self.conn
            c.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?)", samples)
            c.executemany("INSERT OR REPLACE INTO host_samples VALUES (?, ?, ?, ?)", hosts)
            c.executemany("INSERT OR REPLACE INTO host_states VALUES (?, ?, ?, ?)", states)
            c.executemany("INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?, ?)", holds)
            c.executemany("INSERT OR REPLACE INTO health_samples VALUES (?, ?, ?, ?, ?, ?)", health)
            c.executemany("INSERT OR REPLACE INTO disk_samples VALUES (?, ?, ?, ?, ?)", disks)
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return stored

    def _rows(
        self,
        snap: HostSnapshot,
        hid: int,
        ts: int,
        samples: list[tuple[int, int, int | None, int | None, int | None]],
        hosts: list[tuple[int, int, int, int]],
        holds: list[tuple[int, int, str, int, int]],
    ) -> None:
        units = host_units(snap, self.thresholds_for(snap.name))
        hosts.append((ts, hid, sum(1 for u in units if u.free), len(units)))
        prev = self._last_poll.get(hid)
        dt = 0 if prev is None or ts <= prev else min(ts - prev, int(MAX_GAP_S))
        if prev is None or ts > prev:
            self._last_poll[hid] = ts
        for gpu in snap.gpus:
            uid = self._unit_id(
                hid, gpu.index, None, gpu.uuid, gpu.name, None, gpu.memory_total_mib
            )
            if not (gpu.mig_enabled and gpu.mig_devices):
                _holds(holds, ts, uid, gpu.processes, dt)
            samples.append(
                (
                    ts,
                    uid,
                    _int(gpu.utilization_pct),
                    _int(gpu.memory_used_mib),
                    _int(gpu.temperature_c),
                )
            )
            if gpu.mig_enabled:
                for mig in gpu.mig_devices:
                    mid = self._unit_id(
                        hid,
                        gpu.index,
                        mig.index,
                        mig.uuid,
                        gpu.name,
                        mig.profile,
                        mig.memory_total_mib,
                    )
                    samples.append((ts, mid, None, _int(mig.memory_used_mib), None))
                    _holds(holds, ts, mid, mig.processes, dt)

    def _health_rows(
        self,
        h: HostHealth,
        hid: int,
        ts: int,
        health: list[tuple[int, int, float | None, int | None, int | None, int | None]],
        disks: list[tuple[int, int, int | None, int | None, int | None]],
    ) -> None:
        health.append((ts, hid, h.load1, h.cpus, h.mem_total_mib, h.mem_used_mib))
        for d in h.disks:
            if d.total_mib is None and d.used_mib is None:
                continue  # unknown (a missing path): a gap, like a host that is down
            disks.append((ts, self._disk_id(hid, d.path), d.total_mib, d.used_mib, d.avail_mib))

    def _note_late(self, ts: int) -> None:
        """A sample in a bucket that was already rolled up: roll that bucket again."""
        for tier in AGGREGATES:
            done = self.done_until[tier.name]
            if done is not None and ts < done:
                self._dirty[tier.name].add(ts - ts % tier.step_s)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")
        # Ids and states cached during the failed batch may not exist: start over.
        try:
            self.load_caches()
        except sqlite3.Error:
            log.debug("could not reload caches after a failed batch", exc_info=True)

    # --- rollups and retention --------------------------------------------------

    def now(self) -> int | None:
        """Data time: the newest sample, but never beyond the wall clock."""
        if self.max_ts is None:
            return None
        return min(self.max_ts, int(self.clock()) + FUTURE_SLACK_S)

    @property
    def needs_maintenance(self) -> bool:
        now = self.now()
        if now is None:
            return False
        if any(self._dirty.values()):
            return True
        for tier in AGGREGATES:
            done = self.done_until[tier.name]
            if done is None or (now - GRACE_S) - (now - GRACE_S) % tier.step_s > done:
                return True
        return False

    def maintain(self) -> None:
        """Roll up completed buckets and apply retention, in one transaction."""
        now = self.now()
        if now is None:
            return
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            # Another process (a second gpu-tray, `gpu-tray history --demo`) may have rolled
            # up since: start from what the file says, never from a stale memory.
            for tier, done in c.execute("SELECT tier, done_until FROM rollup_state"):
                self.done_until[tier] = done
            for tier in AGGREGATES:
                self._roll_tier(tier, now)
            self._retain(now)
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        for dirty in self._dirty.values():
            dirty.clear()
        self._vacuum_if_sparse()

    def _roll_tier(self, tier: Tier, now: int) -> None:
        step = tier.step_s
        done = self.done_until[tier.name]
        for lo, hi in _runs(sorted(self._dirty[tier.name]), step):
            _roll(self.conn, tier, lo, hi)
        if done is None:
            first = self.conn.execute(
                "SELECT min(t) FROM (SELECT min(ts) AS t FROM samples "
                "UNION ALL SELECT min(ts) FROM host_samples "
                "UNION ALL SELECT min(ts) FROM health_samples)"
            ).fetchone()[0]
            if first is None:
                return
            done = first - first % step
        hi = (now - GRACE_S) - (now - GRACE_S) % step
        if hi > done:
            _roll(self.conn, tier, done, hi)
            done = hi
        if done != self.done_until[tier.name]:
            self.conn.execute(
                "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
                (tier.name, done),
            )
            self.done_until[tier.name] = done

    def _raw_cutoff(self) -> int | None:
        """Raw rows older than this may go: past retention AND rolled into every tier."""
        now = self.now()
        if now is None:
            return None
        cut = now - self.retention.raw_s
        for tier in AGGREGATES:
            done = self.done_until[tier.name]
            if done is None:
                return None
            cut = min(cut, done)
        return cut

    def _retain(self, now: int) -> None:
        c = self.conn
        cut = self._raw_cutoff()
        if cut is not None:
            c.execute("DELETE FROM samples WHERE ts < ?", (cut,))
            c.execute("DELETE FROM host_samples WHERE ts < ?", (cut,))
            c.execute("DELETE FROM health_samples WHERE ts < ?", (cut,))
            c.execute("DELETE FROM disk_samples WHERE ts < ?", (cut,))
            self.raw_floor = cut
        for tier in AGGREGATES:
            cut = now - self.retention.keep_s(tier)
            c.execute(f"DELETE FROM {tier.unit_table} WHERE ts < ?", (cut,))
            c.execute(f"DELETE FROM {tier.host_table} WHERE ts < ?", (cut,))
            c.execute(f"DELETE FROM {tier.health_table} WHERE ts < ?", (cut,))
            c.execute(f"DELETE FROM {tier.disk_table} WHERE ts < ?", (cut,))
        c.execute("DELETE FROM host_states WHERE ts < ?", (now - self.retention.states_s,))
        c.execute("DELETE FROM holds WHERE ts < ?", (now - self.retention.holds_s,))

    def _vacuum_if_sparse(self) -> None:
        """Hand free pages back once a quarter of the file is empty (after a backfill, or a
        long time off), a few MB per pass so the writer never stalls for long. In steady
        state, retention frees about what new rows take, and nothing is handed back."""
        c = self.conn
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        if free > 256 and free * 4 > pages:
            # executescript steps the pragma to the end; execute() would free one page.
            c.executescript(f"PRAGMA incremental_vacuum({min(free, VACUUM_PAGES)});")


def _holds(
    out: list[tuple[int, int, str, int, int]],
    ts: int,
    unit_id: int,
    processes: Iterable[GpuProcess],
    dt: int,
) -> None:
    """One row per user holding the unit ('' for processes whose owner is not visible)."""
    per_user: dict[str, int] = {}
    for p in processes:
        user = p.user or ""
        per_user[user] = per_user.get(user, 0) + 1
    out.extend((ts, unit_id, user, n, dt) for user, n in per_user.items())


def _runs(buckets: list[int], step: int) -> Iterable[tuple[int, int]]:
    """Consecutive bucket starts as half-open [lo, hi) ranges."""
    start = prev = None
    for b in buckets:
        if start is None:
            start = prev = b
        elif b == prev + step:  # type: ignore[operator]
            prev = b
        else:
            yield start, prev + step  # type: ignore[operator]
            start = prev = b
    if start is not None:
        yield start, prev + step  # type: ignore[operator]


def _roll(conn: sqlite3.Connection, tier: Tier, lo: int, hi: int) -> None:
    """Aggregate raw rows in [lo, hi) into `tier`. Means are rounded half away from zero."""
    step = tier.step_s
    conn.execute(
        f"INSERT OR REPLACE INTO {tier.unit_table} "
        f"SELECT (ts / {step}) * {step}, unit_id, "
        "CAST(round(avg(util)) AS INTEGER), max(util), "
        "CAST(round(avg(mem)) AS INTEGER), max(mem), "
        "CAST(round(avg(temp)) AS INTEGER), max(temp) "
        f"FROM {RAW.unit_table} WHERE ts >= ? AND ts < ? GROUP BY ts / {step}, unit_id",
        (lo, hi),
    )
    conn.execute(
        f"INSERT OR REPLACE INTO {tier.host_table} "
        f"SELECT (ts / {step}) * {step}, host_id, count(*), sum(free), max(free), "
        "sum(free > 0), max(total) "
        f"FROM {RAW.host_table} WHERE ts >= ? AND ts < ? GROUP BY ts / {step}, host_id",
        (lo, hi),
    )
    conn.execute(
        f"INSERT OR REPLACE INTO {tier.health_table} "
        f"SELECT (ts / {step}) * {step}, host_id, avg(load1), max(load1), max(cpus), "
        f"avg({MEM_PCT}), max({MEM_PCT}), max(mem_total) "
        f"FROM {RAW.health_table} WHERE ts >= ? AND ts < ? GROUP BY ts / {step}, host_id",
        (lo, hi),
    )
    conn.execute(
        f"INSERT OR REPLACE INTO {tier.disk_table} "
        f"SELECT (ts / {step}) * {step}, disk_id, avg({DISK_PCT}), max({DISK_PCT}), max(total) "
        f"FROM {RAW.disk_table} WHERE ts >= ? AND ts < ? GROUP BY ts / {step}, disk_id",
        (lo, hi),
    )
