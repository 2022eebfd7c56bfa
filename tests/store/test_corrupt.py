"""A broken history file never stops the app: it is moved aside, or history is off."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from gpu_tray.store import HistoryReader, HistoryWriter, Recorder, open_store

from .helpers import T0, gpu, ok

LOGGER = "gpu_tray.store"


def _asides(db: Path) -> list[Path]:
    return sorted(
        p
        for p in db.parent.iterdir()
        if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))
    )


def _write_one(db: Path, ts: float = T0) -> HistoryWriter:
    w = HistoryWriter(db, linger_s=0.01)
    w.start()
    w.submit(ok("n", ts, gpu(0, util=42)))
    assert w.flush(timeout=30)
    return w


def test_a_file_that_is_not_a_database_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "history.sqlite3"
    garbage = b"this is not an SQLite file\n" * 200
    db.write_bytes(garbage)
    caplog.set_level(logging.WARNING, LOGGER)
    w = _write_one(db)
    w.stop()
    [aside] = _asides(db)
    assert aside.read_bytes() == garbage
    assert caplog.messages == [
        f"History database {db} is unreadable (file is not a database); "
        f"moved it to {aside} and started a new one"
    ]
    assert w.error is None and w.written == 1
    assert HistoryReader(db).load_range(T0, T0 + 60).hosts["n"].units[0].util_mean == [42.0]


def test_a_damaged_page_is_found_at_open_and_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "history.sqlite3"
    conn = open_store(db)
    rec = Recorder(conn, clock=lambda: T0 + 86_400)
    rec.write(
        [ok("n", T0 + 10 * k, *(gpu(i, util=k % 100) for i in range(8))) for k in range(3000)]
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    page = 4096
    data = bytearray(db.read_bytes())
    middle = len(data) // page // 2
    data[middle * page : (middle + 1) * page] = b"\xa5" * page
    db.write_bytes(bytes(data))

    caplog.set_level(logging.WARNING, LOGGER)
    w = _write_one(db, T0 + 40_000)
    w.stop()
    [aside] = _asides(db)
    check = sqlite3.connect(aside)
    try:
        problems = [r[0] for r in check.execute("PRAGMA quick_check(3)")]
        reason = "integrity check failed: " + "; ".join(problems)
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
    assert caplog.messages == [
        f"History database {db} is unreadable ({reason}); moved it to {aside} and started a new one"
    ]
    fresh = sqlite3.connect(db)
    assert fresh.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert fresh.execute("SELECT count(*) FROM samples").fetchone()[0] == 1


def test_corruption_found_while_writing_replaces_the_file_and_writing_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "history.sqlite3"
    w = _write_one(db)
    real_write = Recorder.write
    calls = {"n": 0}

    def failing_once(self, snaps):
        calls["n"] += 1
        if calls["n"] == 1:
            exc = sqlite3.DatabaseError("database disk image is malformed")
            exc.sqlite_errorcode = 11  # SQLITE_CORRUPT
            raise exc
        return real_write(self, snaps)

    monkeypatch.setattr(Recorder, "write", failing_once)
    caplog.set_level(logging.WARNING, LOGGER)
    w.submit(ok("n", T0 + 10, gpu(0, util=7)))
    assert w.flush(timeout=30)
    w.submit(ok("n", T0 + 20, gpu(0, util=8)))
    assert w.flush(timeout=30)
    w.stop()
    [aside] = _asides(db)
    assert caplog.messages == [
        f"History database {db} is unreadable (database disk image is malformed); "
        f"moved it to {aside} and started a new one"
    ]
    # The batch that hit the damage is written again, into the new file.
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT util FROM samples ORDER BY ts")] == [7, 8]


def test_an_unopenable_path_turns_history_off_and_submit_still_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "history.sqlite3"
    db.mkdir()  # a directory where the file should be
    caplog.set_level(logging.WARNING, LOGGER)
    w = HistoryWriter(db)
    w.start()
    assert w.wait_ready(timeout=30)
    assert w.error == f"History is off: cannot open {db}: unable to open database file"
    assert caplog.messages == [w.error]
    for k in range(10):
        w.submit(ok("n", T0 + k, gpu(0)))
    assert w.flush(timeout=30)
    w.stop()
    assert db.is_dir() and not _asides(db)


def test_a_data_dir_that_cannot_be_made_turns_history_off(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a directory")
    w = HistoryWriter(blocker / "gpu-tray" / "history.sqlite3")
    w.start()
    assert w.wait_ready(timeout=30)
    assert w.error is not None
    assert w.error.startswith(f"History is off: cannot create {blocker / 'gpu-tray'}: ")
    w.stop()
