"""Database work for the history window, off the GUI thread.

Each request runs `fn()` on a small QThreadPool of its own and comes back to
the GUI thread as a queued signal carrying its kind, its request number and
the result (or a one-line error). The window drops answers to requests it has
since replaced, so a slow 30-day load never overwrites a newer 1-hour one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(str, int, object)
    failed = Signal(str, int, str)


class _Task(QRunnable):
    def __init__(self, relay: _Relay, kind: str, number: int, fn: Callable[[], object]) -> None:
        super().__init__()
        self.relay, self.kind, self.number, self.fn = relay, kind, number, fn

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:
            log.warning("history %s failed: %s", self.kind, exc, exc_info=True)
            self._emit(self.relay.failed, f"{type(exc).__name__}: {exc}")
            return
        self._emit(self.relay.done, result)

    def _emit(self, signal: object, value: object) -> None:
        # RuntimeError: the window closed while this ran, and nobody waits for the answer.
        with contextlib.suppress(RuntimeError):
            signal.emit(self.kind, self.number, value)  # type: ignore[attr-defined]


class Loader(QObject):
    """`finished(kind, number, result)` / `failed(kind, number, message)`, on the GUI thread."""

    finished = Signal(str, int, object)
    failed = Signal(str, int, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._relay = _Relay(self)  # lives on the GUI thread: its signals arrive queued
        self._relay.done.connect(self.finished)
        self._relay.failed.connect(self.failed)
        self._numbers = itertools.count(1)
        self.latest: dict[str, int] = {}

    def submit(self, kind: str, fn: Callable[[], object]) -> int:
        number = next(self._numbers)
        self.latest[kind] = number
        self.pool.start(_Task(self._relay, kind, number, fn))
        return number

    def is_latest(self, kind: str, number: int) -> bool:
        return self.latest.get(kind) == number

    def busy(self) -> bool:
        return self.pool.activeThreadCount() > 0

    def wait(self, msecs: int = 30_000) -> bool:
        return self.pool.waitForDone(msecs)
