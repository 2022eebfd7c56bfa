"""The history schema and its forward-only migrations.

`PRAGMA user_version` is the schema version. Each migration is a list of
statements run in ONE transaction together with the version bump, so a
crash or an error part-way leaves the previous version intact. There is no
downgrade: a file written by a newer gpu-tray is left alone.

Timestamps are integer epoch seconds (UTC). Tables keyed by time first are
WITHOUT ROWID: new rows append at the right edge of the b-tree, and
retention deletes a contiguous run at the left edge.
"""

from __future__ import annotations

# Version 1: raw samples only.
V1: tuple[str, ...] = (
    "CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    # A unit is a whole GPU (mig_index NULL) or one MIG device of a MIG-enabled GPU.
    """CREATE TABLE units (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        gpu_index INTEGER NOT NULL,
        mig_index INTEGER,
        uuid TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        profile TEXT,
        memory_total_mib INTEGER
    )""",
    "CREATE UNIQUE INDEX units_by_key ON units (host_id, gpu_index, ifnull(mig_index, -1))",
    # One row per unit per poll of a host that answered. NULL = unknown (N/A).
    """CREATE TABLE samples (
        ts INTEGER NOT NULL,
        unit_id INTEGER NOT NULL,
        util INTEGER,
        mem INTEGER,
        temp INTEGER,
        PRIMARY KEY (ts, unit_id)
    ) WITHOUT ROWID""",
    # One row per poll of a host that answered: how many units were free, of how many.
    """CREATE TABLE host_samples (
        ts INTEGER NOT NULL,
        host_id INTEGER NOT NULL,
        free INTEGER NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (ts, host_id)
    ) WITHOUT ROWID""",
    # A row only when a host's state or message changes.
    """CREATE TABLE host_states (
        host_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        message TEXT,
        PRIMARY KEY (host_id, ts)
    ) WITHOUT ROWID""",
    "CREATE INDEX host_states_by_ts ON host_states (ts)",
)

_UNIT_AGG = """CREATE TABLE {name} (
        ts INTEGER NOT NULL,
        unit_id INTEGER NOT NULL,
        util_mean INTEGER,
        util_max INTEGER,
        mem_mean INTEGER,
        mem_max INTEGER,
        temp_mean INTEGER,
        temp_max INTEGER,
        PRIMARY KEY (ts, unit_id)
    ) WITHOUT ROWID"""

# n polls in the bucket; any_free: how many of them had at least one free unit.
_HOST_AGG = """CREATE TABLE {name} (
        ts INTEGER NOT NULL,
        host_id INTEGER NOT NULL,
        n INTEGER NOT NULL,
        free_sum INTEGER NOT NULL,
        free_max INTEGER NOT NULL,
        any_free INTEGER NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (ts, host_id)
    ) WITHOUT ROWID"""

# Version 2: tiered retention. 1-minute and 15-minute aggregates (ts = bucket
# start), and how far each tier has been rolled up, so rollups never rescan.
# Existing raw samples are rolled up by the first maintenance pass after the
# upgrade: with no rollup_state row a tier starts at the oldest raw sample.
V2: tuple[str, ...] = (
    _UNIT_AGG.format(name="samples_1m"),
    _UNIT_AGG.format(name="samples_15m"),
    _HOST_AGG.format(name="host_1m"),
    _HOST_AGG.format(name="host_15m"),
    "CREATE TABLE rollup_state (tier TEXT PRIMARY KEY, done_until INTEGER NOT NULL)",
)

# Version 3: who holds each unit (for idle holders and the people view). One row
# per unit, per user holding it, per poll of a host that answered; user '' when
# the owner is not visible. `procs` counts that user's processes on the unit.
# `dt` is the seconds since the host's previous answered poll, capped at
# core.idle.MAX_GAP_S (0 for a host's first poll): the time this row stands
# for, so GPU-hours are sum(dt) / 3600 with no rescan of polls. A unit polled
# with no holds row had no process. Kept `Retention.holds_s` (8 days).
V3: tuple[str, ...] = (
    """CREATE TABLE holds (
        ts INTEGER NOT NULL,
        unit_id INTEGER NOT NULL,
        user TEXT NOT NULL,
        procs INTEGER NOT NULL,
        dt INTEGER NOT NULL,
        PRIMARY KEY (ts, unit_id, user)
    ) WITHOUT ROWID""",
)

_HEALTH_AGG = """CREATE TABLE {name} (
        ts INTEGER NOT NULL,
        host_id INTEGER NOT NULL,
        load_mean REAL,
        load_max REAL,
        cpus INTEGER,
        mem_pct_mean REAL,
        mem_pct_max REAL,
        mem_total INTEGER,
        PRIMARY KEY (ts, host_id)
    ) WITHOUT ROWID"""

_DISK_AGG = """CREATE TABLE {name} (
        ts INTEGER NOT NULL,
        disk_id INTEGER NOT NULL,
        pct_mean REAL,
        pct_max REAL,
        total INTEGER,
        PRIMARY KEY (ts, disk_id)
    ) WITHOUT ROWID"""

# Version 4: host health (load, memory, disks), read in the same poll as the GPUs and
# kept like the GPU series: raw per poll, then 1-minute and 15-minute mean and max.
# Sizes in MiB; NULL = unknown. A host's health is stored whatever its state (a host
# whose nvidia-smi fails still reports its RAM). Nothing existing changes.
V4: tuple[str, ...] = (
    """CREATE TABLE health_samples (
        ts INTEGER NOT NULL,
        host_id INTEGER NOT NULL,
        load1 REAL,
        cpus INTEGER,
        mem_total INTEGER,
        mem_used INTEGER,
        PRIMARY KEY (ts, host_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE disks (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        path TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX disks_by_key ON disks (host_id, path)",
    # avail: what a non-root user may still write (df's Capacity is used / (used + avail)).
    """CREATE TABLE disk_samples (
        ts INTEGER NOT NULL,
        disk_id INTEGER NOT NULL,
        total INTEGER,
        used INTEGER,
        avail INTEGER,
        PRIMARY KEY (ts, disk_id)
    ) WITHOUT ROWID""",
    _HEALTH_AGG.format(name="health_1m"),
    _HEALTH_AGG.format(name="health_15m"),
    _DISK_AGG.format(name="disk_1m"),
    _DISK_AGG.format(name="disk_15m"),
)

# MIGRATIONS[i] takes a database from version i to version i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (V1, V2, V3, V4)
SCHEMA_VERSION = len(MIGRATIONS)

#: Per cent of RAM used, from a health_samples row (NULL when unknown).
MEM_PCT = "100.0 * mem_used / nullif(mem_total, 0)"
#: Per cent of a disk used as df prints it, from a disk_samples row: root's reserve counts
#: as neither used nor free; of the total when "available" is unknown.
DISK_PCT = "100.0 * used / nullif(coalesce(used + avail, total), 0)"
