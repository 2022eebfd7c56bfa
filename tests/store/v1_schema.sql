-- The first history schema (user_version 1), exactly as gpu-tray created it.
-- Kept here so the migration test starts from a real first-version file.
CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE units (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    gpu_index INTEGER NOT NULL,
    mig_index INTEGER,
    uuid TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    profile TEXT,
    memory_total_mib INTEGER
);
CREATE UNIQUE INDEX units_by_key ON units (host_id, gpu_index, ifnull(mig_index, -1));
CREATE TABLE samples (
    ts INTEGER NOT NULL,
    unit_id INTEGER NOT NULL,
    util INTEGER,
    mem INTEGER,
    temp INTEGER,
    PRIMARY KEY (ts, unit_id)
) WITHOUT ROWID;
CREATE TABLE host_samples (
    ts INTEGER NOT NULL,
    host_id INTEGER NOT NULL,
    free INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (ts, host_id)
) WITHOUT ROWID;
CREATE TABLE host_states (
    host_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    PRIMARY KEY (host_id, ts)
) WITHOUT ROWID;
CREATE INDEX host_states_by_ts ON host_states (ts);
PRAGMA user_version = 1;
