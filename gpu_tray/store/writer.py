"""The history writer: a thread that owns the database connection.

`submit(snapshot)` only puts the snapshot on a queue, so the GUI thread (or a
poller worker) never waits on the disk. The thread writes whatever has queued
up in one transaction, then rolls up and applies retention when a bucket has
completed. If the database cannot be used, history is off for this run: the
reason is logged once and in `error`, and `submit` keeps returning at once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpu_tray.core.availability import ThresholdsFor
from gpu_tray.core.models import HostSnapshot
from gpu_tray.store.connection import StoreUnavailable, is_corruption, move_aside, open_store
from gpu_tray.store.recorder import Recorder
from gpu_tray.store.tiers import DEFAULT_RETENTION, Retention

log = logging.getLogger("gpu_tray.store")

CommitCallback = Callable[[Sequence[HostSnapshot]], None]
BACKFILL_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class _Flush:
    done: threading.Event


class _Stop:
    pass


class HistoryWriter:
    """Writes snapshots to the history database on its own thread.

    `backfill`: snapshots to write first when the database has no samples yet
    (the demo's simulated week); produced lazily, on the writer thread.
    `on_commit` is called on the writer thread with each committed batch.
    """

    def __init__(
        self,
        path: Path | str,
        thresholds_for: ThresholdsFor | None = None,
        *,
        backfill: Callable[[], Iterable[HostSnapshot]] | None = None,
        retention: Retention = DEFAULT_RETENTION,
        linger_s: float = 0.5,
        max_batch: int = 5000,
        max_queue: int = 100_000,
        on_commit: CommitCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._thresholds_for = thresholds_for
        self._backfill = backfill
        self.retention = retention
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.on_commit = on_commit
        self.clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._ready = threading.Event()
        self.error: str | None = None  # why history is off, for the UI
        self.dropped = 0
        self.written = 0
        self._recorder: Recorder | None = None
        self._conn: sqlite3.Connection | None = None

    # --- called from any thread ----------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, snap: HostSnapshot) -> None:
        """Queue a snapshot for writing. Never blocks; drops (and counts) when full."""
        if self.error is not None:
            return
        try:
            self._queue.put_nowait(snap)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("history writer is behind: %d snapshots dropped", self.dropped)

    __call__ = submit  # a writer is a snapshot sink

    def set_thresholds(self, thresholds_for: ThresholdsFor) -> None:
        """New free thresholds (config changed); used from the next batch on."""
        self._thresholds_for = thresholds_for
        if self._recorder is not None:
            self._recorder.thresholds_for = thresholds_for

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the database is open (or history turned out to be off)."""
        return self._ready.wait(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is committed (or dropped)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        try:
            self._queue.put(_Flush(done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the database."""
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(_Stop(), timeout=timeout)
            self._thread.join(timeout)

    # --- the writer thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        finally:
            self._ready.set()
        if self._recorder is None:
            self._drain_forever()
            return
        try:
            self._loop()
        finally:
            if self._conn is not None:
                try:
                    self._conn.execute("PRAGMA optimize")
                    self._conn.close()
                except sqlite3.Error:
                    pass

    def _open(self, check: bool = True) -> None:
        try:
            self._conn = open_store(self.path, check=check)
            self._conn.execute("PRAGMA journal_size_limit = 16777216")
            self._recorder = Recorder(self._conn, self._thresholds_for, self.retention, self.clock)
        except StoreUnavailable as exc:
            self._off(str(exc))
            return
        except sqlite3.Error as exc:
            self._off(f"History is off: cannot open {self.path}: {exc}")
            return
        if self._backfill is not None:
            backfill, self._backfill = self._backfill, None
            self._run_backfill(backfill)

    def _off(self, message: str) -> None:
        self.error = message
        log.warning("%s", message)
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None
        self._recorder = None

    def _drain_forever(self) -> None:
        """History is off: answer flushes and stop, drop everything else."""
        while True:
            item = self._queue.get()
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, _Stop):
                return

    def _run_backfill(self, backfill: Callable[[], Iterable[HostSnapshot]]) -> None:
        rec = self._recorder
        assert rec is not None and self._conn is not None
        if self._conn.execute("SELECT 1 FROM host_samples LIMIT 1").fetchone():
            return
        started = time.monotonic()
        chunk: list[HostSnapshot] = []
        n = 0
        try:
            for snap in backfill():
                chunk.append(snap)
                if len(chunk) >= BACKFILL_CHUNK:
                    n += rec.write(chunk)
                    rec.maintain()
                    chunk.clear()
                    time.sleep(0)  # let the GUI thread have the GIL between chunks
            n += rec.write(chunk)
            rec.maintain()
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            self._failed(exc, [])
            return
        log.info("backfilled %d snapshots of history in %.1f s", n, time.monotonic() - started)

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=30.0)
            except queue.Empty:
                self._maintain()
                continue
            batch = [first]
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.max_batch and not isinstance(batch[-1], _Flush | _Stop):
                left = deadline - time.monotonic()
                try:
                    batch.append(
                        self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            snaps = [x for x in batch if isinstance(x, HostSnapshot)]
            if snaps:
                self._write(snaps)
            control = batch[-1]
            if isinstance(control, _Flush):
                control.done.set()
            elif isinstance(control, _Stop):
                return
            if self._recorder is None:  # history turned off by a failure
                self._drain_forever()
                return

    def _write(self, snaps: list[HostSnapshot]) -> None:
        rec = self._recorder
        if rec is None:
            return
        try:
            rec.write(snaps)
        except sqlite3.Error as exc:
            self._failed(exc, snaps)
            return
        self.written += len(snaps)
        if self.on_commit is not None:
            try:
                self.on_commit(snaps)
            except Exception:
                log.exception("history on_commit callback failed")
        self._maintain()

    def _maintain(self) -> None:
        rec = self._recorder
        if rec is None or not rec.needs_maintenance:
            return
        try:
            rec.maintain()
        except sqlite3.Error as exc:
            self._failed(exc, [])

    def _failed(self, exc: sqlite3.Error, snaps: list[HostSnapshot]) -> None:
        """A write failed. A damaged file is replaced; anything else loses this batch only."""
        if is_corruption(exc):
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn = self._recorder = None
            try:
                move_aside(self.path, str(exc))
            except StoreUnavailable as off:
                self._off(str(off))
                return
            self._open(check=False)
            if snaps and self._recorder is not None:
                self._write(snaps)
            return
        log.warning("history: could not write %d snapshots to %s: %s", len(snaps), self.path, exc)
