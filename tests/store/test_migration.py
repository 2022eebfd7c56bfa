"""Upgrading a first-version (raw samples only) database, and refusing what we cannot."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from gpu_tray.store import HistoryReader, Recorder, StoreUnavailable, open_store
from gpu_tray.store import connection as connection_mod
from gpu_tray.store.schema import SCHEMA_VERSION, V1, V2

from .helpers import T0, brute_host_aggregates, brute_unit_aggregates, table

V1_SQL = (Path(__file__).parent / "v1_schema.sql").read_text()
HOURS = 72


def _v1_database(path: Path) -> tuple[list[tuple], list[tuple]]:
    """A version-1 file with 72 h of raw samples: two GPUs on one host, every 30 s."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQL)
    conn.execute("INSERT INTO hosts VALUES (1, 'old-node')")
    conn.execute("INSERT INTO units VALUES (1, 1, 0, NULL, 'GPU-a', 'Tesla V100', NULL, 16384)")
    conn.execute("INSERT INTO units VALUES (2, 1, 1, NULL, 'GPU-b', 'Tesla V100', NULL, 16384)")
    raw, host = [], []
    for k in range(HOURS * 120):
        ts = T0 + 30 * k
        raw.append((ts, 1, k % 101, 1000 + k % 7, 40 + k % 9))
        raw.append((ts, 2, None, (k * 37) % 16000, None))
        host.append((ts, 1, k % 3, 2))
    conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", raw)
    conn.executemany("INSERT INTO host_samples VALUES (?, ?, ?, ?)", host)
    conn.execute("INSERT INTO host_states VALUES (1, ?, 'ok', NULL)", (T0,))
    conn.commit()
    conn.close()
    return raw, host


def test_the_fixture_is_the_shipped_first_schema(tmp_path: Path) -> None:
    """If V1 in schema.py changed, old files would no longer match what we migrate from."""
    a, b = sqlite3.connect(tmp_path / "a"), sqlite3.connect(tmp_path / "b")
    a.executescript(V1_SQL)
    for statement in V1:
        b.execute(statement)
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name"

    def normal(conn: sqlite3.Connection) -> list[tuple]:
        return [(t, n, " ".join((sql or "").split())) for t, n, sql in conn.execute(schema)]

    assert normal(a) == normal(b)


def test_upgrade_from_v1_keeps_every_sample_and_rolls_it_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "history.sqlite3"
    raw, host = _v1_database(db)
    caplog.set_level(logging.INFO, "gpu_tray.store")
    conn = open_store(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    backup = tmp_path / "history.sqlite3.v1.bak"
    assert f"backed up {db} (schema 1) to {backup} before upgrading" in caplog.messages
    old = sqlite3.connect(backup)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    assert old.execute("SELECT count(*) FROM samples").fetchone()[0] == len(raw)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    now = T0 + 30 * (HOURS * 120 - 1)
    rec = Recorder(conn, clock=lambda: now)
    assert rec.needs_maintenance
    rec.maintain()
    done = dict(conn.execute("SELECT tier, done_until FROM rollup_state"))
    for step, tier, unit_table, host_table in (
        (60, "1m", "samples_1m", "host_1m"),
        (900, "15m", "samples_15m", "host_15m"),
    ):
        want = {k: v for k, v in brute_unit_aggregates(raw, step).items() if k[0] < done[tier]}
        assert table(conn, unit_table) == want
        want = {k: v for k, v in brute_host_aggregates(host, step).items() if k[0] < done[tier]}
        assert table(conn, host_table) == want
    # 72 h of raw, 48 h kept.
    assert conn.execute("SELECT min(ts) FROM samples").fetchone()[0] == now - 48 * 3600
    data = HistoryReader(db).load_range(T0, T0 + 7 * 86_400)
    assert data.hosts["old-node"].units[0].unit.model == "Tesla V100"


def test_a_failing_step_rolls_back_and_leaves_the_file_at_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "history.sqlite3"
    _v1_database(db)
    broken = (*V2, "CREATE TABLE samples (x)")
    monkeypatch.setattr(connection_mod, "MIGRATIONS", (V1, broken))
    with pytest.raises(StoreUnavailable) as err:
        open_store(db)
    assert str(err.value) == (
        f"History is off: could not upgrade {db} from schema 1 to 2: "
        f"table samples already exists; the backup is {db}.v1.bak"
    )
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "samples_1m" not in names and "rollup_state" not in names


def test_a_file_from_a_newer_version_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreUnavailable) as err:
        open_store(db)
    assert str(err.value) == (
        f"History is off: {db} was written by a newer gpu-tray "
        f"(schema 9; this version reads up to {SCHEMA_VERSION})"
    )
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))
