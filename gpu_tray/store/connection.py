"""Opening the history database: pragmas, migrations, and what to do when it is broken.

A history database that cannot be read must never stop the app: a corrupt
file is moved aside (with its -wal and -shm) and a new one is started; any
other failure (permissions, a full disk, a file from a newer gpu-tray) turns
history off for this run with a one-line message.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from gpu_tray.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("gpu_tray.store")

# sqlite3 primary result codes that mean "this file is damaged", not "try again".
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
BUSY_TIMEOUT_MS = 5000


class StoreUnavailable(Exception):
    """History cannot be used this run. str() is one line a person understands."""


class CorruptStore(Exception):
    """The file is damaged or not a history database; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_corruption(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit BEGIN/COMMIT."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def open_store(path: Path | str, *, check: bool = True) -> sqlite3.Connection:
    """Open (creating or upgrading as needed) the history database for writing.

    `check` runs `PRAGMA quick_check` first. A damaged file is moved aside and
    replaced by a new, empty one. Raises StoreUnavailable when history cannot
    be used at all.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"History is off: cannot create {path.parent}: {exc}") from None
    try:
        return _open(path, check)
    except CorruptStore as exc:
        move_aside(path, exc.reason)
    try:
        return _open(path, check=False)
    except CorruptStore as exc:  # a new file that is already broken: give up, loudly
        raise StoreUnavailable(f"History is off: {path}: {exc.reason}") from None


def _open(path: Path, check: bool) -> sqlite3.Connection:
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"History is off: cannot open {path}: {exc}") from None
    try:
        _prepare(conn, path, check)
    except CorruptStore:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        if is_corruption(exc):
            raise CorruptStore(str(exc)) from None
        raise StoreUnavailable(f"History is off: cannot open {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, check: bool) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise CorruptStore("not a gpu-tray history database")
        # Lets retention hand pages back to the file system; only settable while empty.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    elif check:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise CorruptStore("integrity check failed: " + "; ".join(problems))
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        log.warning("%s: WAL mode is not available here (journal mode %s)", path, mode)
    # WAL + NORMAL: a crash of the app never corrupts or loses a commit; a power
    # cut may lose the last commits, which is fine for history.
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn, path)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION, one transaction per step, after a backup."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    if version == SCHEMA_VERSION:
        return
    backup = None
    if version > 0:
        backup = backup_path(path, version)
        try:
            dest = sqlite3.connect(str(backup))
            try:
                conn.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            if is_corruption(exc):
                raise
            raise StoreUnavailable(
                f"History is off: could not back up {path} to {backup} before upgrading: {exc}"
            ) from None
        log.info("backed up %s (schema %d) to %s before upgrading", path, version, backup)
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have upgraded while we waited for the lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                break
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            if is_corruption(exc):
                raise
            where = f"; the backup is {backup}" if backup else ""
            raise StoreUnavailable(
                f"History is off: could not upgrade {path} from schema {version} "
                f"to {version + 1}: {exc}{where}"
            ) from None
        version += 1
        log.info("history database %s is now at schema %d", path, version)


def _newer(path: Path, version: int) -> StoreUnavailable:
    return StoreUnavailable(
        f"History is off: {path} was written by a newer gpu-tray "
        f"(schema {version}; this version reads up to {SCHEMA_VERSION})"
    )


def backup_path(path: Path, version: int) -> Path:
    return path.with_name(f"{path.name}.v{version}.bak")


def move_aside(path: Path, reason: str) -> Path:
    """Rename a damaged database (and its -wal/-shm) out of the way; log where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreUnavailable(
            f"History is off: {path} is unreadable ({reason}) and could not be moved aside: {exc}"
        ) from None
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        try:
            side.rename(aside.with_name(aside.name + suffix))
        except FileNotFoundError:
            pass
        except OSError:
            side.unlink(missing_ok=True)
    log.warning(
        "History database %s is unreadable (%s); moved it to %s and started a new one",
        path,
        reason,
        aside,
    )
    return aside
