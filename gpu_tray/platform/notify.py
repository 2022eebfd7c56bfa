"""Desktop notifications: a chain of backends, walked off the GUI thread.

The chain (built by the app) is: the freedesktop service over D-Bus (with
action buttons), then the tray icon's own balloon, then the log, which cannot
fail. The first backend that can be built and that delivers wins; the log
says which. A backend that fails later is dropped and the message goes to
the next one, so one broken notification daemon never loses a message.

Qt-free: backends that need the GUI thread get a function that posts there.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: (action key, button label). "default" is what clicking the notification itself does.
Action = tuple[str, str]
#: Called on a non-GUI thread when the user picks an action.
ActionHandler = Callable[["Notification", str], None]


@dataclass(frozen=True, slots=True, eq=False)
class Notification:
    summary: str
    body: str
    actions: tuple[Action, ...] = ()
    sound: bool = False
    #: Whatever the action handler needs to act (the firings, for the tray).
    payload: Any = field(default=None, repr=False)


class NotifyError(Exception):
    """A backend cannot be built, or failed to deliver; `str()` says why in one line."""


class NotifyBackend(Protocol):
    name: str

    def send(self, note: Notification) -> None:
        """Deliver or raise NotifyError. Called on the notifier's thread."""
        ...

    def close(self) -> None: ...


BackendFactory = Callable[[], NotifyBackend]


class LogBackend:
    """The end of the chain: it cannot fail, and at least the log has it."""

    name = "log"

    def send(self, note: Notification) -> None:
        log.warning("notification: %s: %s", note.summary, note.body.replace("\n", "; "))

    def close(self) -> None:
        pass


class CallbackBackend:
    """A backend made of two functions, e.g. the tray balloon: `available()` is read on
    the notifier's thread (keep it a cheap flag), `show()` must post to the GUI thread."""

    def __init__(
        self, name: str, show: Callable[[Notification], None], available: Callable[[], bool]
    ) -> None:
        self.name = name
        self._show = show
        self._available = available

    def send(self, note: Notification) -> None:
        if not self._available():
            raise NotifyError(f"{self.name} is not available")
        self._show(note)

    def close(self) -> None:
        pass


_STOP = object()


class Notifier:
    """Sends notifications through the first backend of the chain that works.

    `notify()` never blocks: the work happens on one daemon thread, so a D-Bus
    daemon that hangs delays notifications, never the GUI.
    """

    #: After falling back, try the better backends again this often (a notification
    #: daemon restarted with the session, a tray that appeared).
    RETRY_BETTER_S = 300.0

    def __init__(self, chain: Sequence[tuple[str, BackendFactory]]) -> None:
        if not chain:
            raise ValueError("the chain needs at least one backend")
        self._chain = list(chain)
        self._backend: NotifyBackend | None = None
        self._index = 0
        self._fell_back_at: float | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._chosen = threading.Event()
        self.chosen: str | None = None
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()
        self._queue.put(None)  # pick a backend now, so the log says which before the first message

    def notify(self, note: Notification) -> None:
        self._queue.put(note)

    def wait_chosen(self, timeout: float) -> str | None:
        """For tests and startup logs: the backend's name once one is chosen."""
        self._chosen.wait(timeout)
        return self.chosen

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued before this call has been handled."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the notifier's thread ------------------------------------------------------------

    def _ensure_backend(self) -> NotifyBackend:
        while self._backend is None:
            name, factory = self._chain[self._index]
            last = self._index == len(self._chain) - 1
            try:
                self._backend = factory()
            except Exception as exc:
                if last:
                    raise
                log.info("notifications: %s unavailable: %s", name, _one_line(exc))
                self._index += 1
                self._fell_back_at = time.monotonic()
                continue
            self.chosen = self._backend.name
            log.info("notifications: using %s", self._backend.name)
            self._chosen.set()
        return self._backend

    def _drop_backend(self, exc: Exception) -> None:
        assert self._backend is not None
        log.warning(
            "notifications: %s failed (%s); falling back", self._backend.name, _one_line(exc)
        )
        try:
            self._backend.close()
        except Exception:
            log.debug("closing %s", self._backend.name, exc_info=True)
        self._backend = None
        self._index = min(self._index + 1, len(self._chain) - 1)
        self._fell_back_at = time.monotonic()

    def _maybe_retry_better(self) -> None:
        if self._fell_back_at is None or self._index == 0:
            return
        if time.monotonic() - self._fell_back_at < self.RETRY_BETTER_S:
            return
        if self._backend is not None:
            self._backend.close()
        self._backend, self._index, self._fell_back_at = None, 0, None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                if self._backend is not None:
                    self._backend.close()
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._deliver(item)
            except Exception:
                log.exception("notifications: could not deliver %r", item)

    def _deliver(self, note: Notification | None) -> None:
        self._maybe_retry_better()
        for _attempt in range(len(self._chain)):
            backend = self._ensure_backend()
            if note is None:
                return
            try:
                backend.send(note)
                return
            except Exception as exc:
                if self._index == len(self._chain) - 1:
                    raise
                self._drop_backend(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
