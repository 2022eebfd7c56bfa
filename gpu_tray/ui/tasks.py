"""Run blocking work (keyring, SSH, disk) off the GUI thread; get the answer back on it.

A daemon thread per task rather than a QThreadPool: a "Test connection" can
wait on a dead host for as long as its timeouts allow, and Qt waits for its
thread pools when the app quits, while a daemon thread never holds up an exit.
The answer crosses back through a queued signal to a small QObject parented
to the widget that asked, so a dialog closed in the meantime simply never
hears it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)


# Tasks waiting for their answer. The Python side of a Task must outlive its worker
# thread: PySide cannot call a slot of a Python subclass whose wrapper is gone.
_pending: set[Task] = set()
_pending_lock = threading.Lock()


class Task(QObject):
    """`fn()` on a daemon thread; then `on_result(value)` or `on_error(exc)` on the GUI thread."""

    _finished = Signal(object, object)

    def __init__(
        self,
        parent: QObject,
        fn: Callable[[], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "settings-task",
    ) -> None:
        super().__init__(parent)
        self._on_result = on_result
        self._on_error = on_error
        self._finished.connect(self._deliver)
        with _pending_lock:
            _pending.add(self)
        threading.Thread(target=self._work, args=(fn,), name=name, daemon=True).start()

    def _work(self, fn: Callable[[], Any]) -> None:
        try:
            result, error = fn(), None
        except Exception as exc:
            result, error = None, exc
        try:
            self._finished.emit(result, error)
        except RuntimeError:  # the widget that asked is gone: nobody is left to tell
            self._release()

    def _release(self) -> None:
        with _pending_lock:
            _pending.discard(self)

    @Slot(object, object)
    def _deliver(self, result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                self._on_result(result)
            elif self._on_error is not None:
                self._on_error(error)
            else:
                log.error("background task failed: %s: %s", type(error).__name__, error)
        finally:
            # No deleteLater(): the parent deletes it. Deleting it here as well crashed
            # (PySide 6.12, in ~QObject) when the parent went at the same time.
            self._release()


def run_in_background(
    parent: QObject,
    fn: Callable[[], Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    name: str = "settings-task",
) -> Task:
    return Task(parent, fn, on_result, on_error, name)
