"""Deliver channel messages off the caller's thread, with bounded retries.

`send(channel, message)` only queues: the tray's GUI thread and `gpu-tray watch`'s
loop never wait on the network or the keyring. Each channel has its own thread
and queue, so a dead Slack never delays the lab's ntfy, and messages to one channel
keep their order. A failed delivery is tried again after each of `retry_delays_s`
(10 s, 30 s, 90 s, 270 s by default: five tries in about 7 minutes), then dropped.

`on_status(channel, text)` (called on the channel's thread) says what the user should
see: a line while it fails ("... retrying in 30 s", then "... gave up ..."), None once
a message got through. The log says what was sent, and where: the channel's name,
never its URL.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from gpu_tray.channels.deliver import Delivery, deliver
from gpu_tray.channels.message import Message

log = logging.getLogger(__name__)

UrlFor = Callable[[str], "str | None"]
Deliver = Callable[[str, Message], Delivery]
StatusCallback = Callable[[str, "str | None"], None]
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (10.0, 30.0, 90.0, 270.0)


def no_url_reason(name: str) -> str:
    return f"no URL in the system keyring (add one: `gpu-tray channel add {name}`)"


def failing_text(name: str, reason: str, retry_in_s: float) -> str:
    """The menu's line while a channel fails (short: the menu is narrow; the log has the
    message's title too)."""
    return f"Channel {name}: not delivered: {reason}; retrying in {retry_in_s:g} s"


def gave_up_text(name: str, reason: str, tries: int) -> str:
    return f"Channel {name}: gave up after {tries} tries: {reason}"


class _Stop:
    pass


class ChannelSender:
    def __init__(
        self,
        url_for: UrlFor,
        *,
        deliver: Deliver = deliver,
        on_status: StatusCallback | None = None,
        retry_delays_s: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
    ) -> None:
        self._url_for = url_for
        self._deliver = deliver
        self._on_status = on_status
        self.retry_delays_s = tuple(retry_delays_s)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[Message | _Stop]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._busy: dict[str, int] = {}  # messages queued or being tried, per channel
        self._idle = threading.Condition(self._lock)
        self._retry = threading.Condition(self._lock)
        self._retry_round = 0  # bumped by retry_now() and close(): ends every back-off wait
        #: (channel, title, delivered) for every message finished, in order.
        self.results: list[tuple[str, str, bool]] = []

    def send(self, channel: str, message: Message) -> None:
        """Queue `message` for `channel`. Never blocks."""
        with self._lock:
            if self._stopping.is_set():
                log.warning('not sending "%s" to channel %s: shutting down', message.title, channel)
                return
            q = self._queues.get(channel)
            if q is None:
                q = self._queues[channel] = queue.Queue()
                t = threading.Thread(
                    target=self._run, args=(channel, q), name=f"channel:{channel}", daemon=True
                )
                self._threads[channel] = t
                t.start()
            self._busy[channel] = self._busy.get(channel, 0) + 1
        q.put(message)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every queued message was delivered or given up on."""
        with self._idle:
            return self._idle.wait_for(lambda: not any(self._busy.values()), timeout)

    def retry_now(self) -> None:
        """End every back-off wait: failed messages are tried again now (e.g. on the
        tray's "Refresh now", or after the user fixed the network)."""
        with self._retry:
            self._retry_round += 1
            self._retry.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop retrying; what is queued gets one more try each, within `timeout`."""
        with self._lock:
            self._stopping.set()
            self._retry_round += 1
            self._retry.notify_all()
            queues = list(self._queues.values())
            threads = list(self._threads.values())
        for q in queues:
            q.put(_Stop())
        for t in threads:
            t.join(timeout)

    # -- the channel's thread -------------------------------------------------------------

    def _run(self, channel: str, q: queue.Queue[Message | _Stop]) -> None:
        while True:
            item = q.get()
            if isinstance(item, _Stop):
                return
            try:
                self._deliver_with_retries(channel, item)
            except Exception:  # our own bug: log it, keep the thread for the next message
                log.exception("channel %s: sending failed", channel)
            finally:
                with self._idle:
                    self._busy[channel] -= 1
                    self._idle.notify_all()

    def _attempt(self, channel: str, message: Message) -> Delivery:
        try:
            url = self._url_for(channel)
        except Exception as exc:
            return Delivery(False, f"the system keyring failed ({type(exc).__name__})")
        if url is None:
            return Delivery(False, no_url_reason(channel))
        return self._deliver(url, message)

    def _deliver_with_retries(self, channel: str, message: Message) -> None:
        tries = 0
        while True:
            tries += 1
            result = self._attempt(channel, message)
            if result.ok:
                log.info('sent "%s" to channel %s', message.title, channel)
                self._finish(channel, message, True, None)
                return
            reason = result.reason or "unknown reason"
            if self._stopping.is_set() or tries > len(self.retry_delays_s):
                text = gave_up_text(channel, reason, tries)
                log.warning('%s ("%s")', text, message.title)
                self._finish(channel, message, False, text)
                return
            delay = self.retry_delays_s[tries - 1]
            text = failing_text(channel, reason, delay)
            log.warning(
                '%s ("%s", try %d of %d)', text, message.title, tries, len(self.retry_delays_s) + 1
            )
            self._status(channel, text)
            self._back_off(delay)

    def _back_off(self, delay: float) -> None:
        with self._retry:
            start = self._retry_round
            self._retry.wait_for(lambda: self._retry_round != start, delay)

    def _finish(self, channel: str, message: Message, ok: bool, text: str | None) -> None:
        with self._lock:
            self.results.append((channel, message.title, ok))
        self._status(channel, text)

    def _status(self, channel: str, text: str | None) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(channel, text)
        except Exception:
            log.exception("channel status listener failed")
