"""The notification chain: the first backend that works wins, failures fall through, the log says so."""

from __future__ import annotations

import logging

import pytest

from gpu_tray.platform.notify import LogBackend, Notification, Notifier, NotifyError


class Recording:
    def __init__(self, name: str = "recording", fail_at_send: bool = False) -> None:
        self.name = name
        self.fail_at_send = fail_at_send
        self.sent: list[str] = []
        self.closed = False

    def send(self, note: Notification) -> None:
        if self.fail_at_send:
            raise NotifyError("the daemon went away")
        self.sent.append(note.summary)

    def close(self) -> None:
        self.closed = True


def unavailable() -> Recording:
    raise NotifyError("no notification service on the session D-Bus")


def test_first_working_backend_wins_and_the_log_says_which(caplog) -> None:
    caplog.set_level(logging.INFO, logger="gpu_tray.platform.notify")
    good = Recording("tray balloon")
    notifier = Notifier(
        [("freedesktop", unavailable), ("tray balloon", lambda: good), ("log", LogBackend)]
    )
    try:
        assert notifier.wait_chosen(5) == "tray balloon"
        notifier.notify(
            Notification("GPU free on node3", "node3: GPU 2 (A100 80GB) is free, 79 GiB")
        )
        assert notifier.drain(5)
        assert good.sent == ["GPU free on node3"]
    finally:
        notifier.close()
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "notifications: freedesktop unavailable: NotifyError: no notification service on the session D-Bus"
        in messages
    )
    assert "notifications: using tray balloon" in messages


def test_a_backend_that_fails_later_passes_the_message_on(caplog) -> None:
    flaky = Recording("freedesktop", fail_at_send=True)
    fallback = Recording("tray balloon")
    notifier = Notifier([("freedesktop", lambda: flaky), ("tray balloon", lambda: fallback)])
    try:
        notifier.notify(Notification("one", "body"))
        notifier.notify(Notification("two", "body"))
        assert notifier.drain(5)
    finally:
        notifier.close()
    assert fallback.sent == ["one", "two"]  # nothing lost
    assert flaky.closed
    assert (
        "notifications: freedesktop failed (NotifyError: the daemon went away); falling back"
        in [r.getMessage() for r in caplog.records]
    )


def test_the_log_backend_ends_every_chain(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="gpu_tray.platform.notify")
    notifier = Notifier([("freedesktop", unavailable), ("log", LogBackend)])
    try:
        notifier.notify(Notification("GPU free on node3", "line one\nline two"))
        assert notifier.drain(5)
        assert notifier.chosen == "log"
    finally:
        notifier.close()
    assert "notification: GPU free on node3: line one; line two" in [
        r.getMessage() for r in caplog.records
    ]


def test_a_chain_needs_a_backend() -> None:
    with pytest.raises(ValueError, match="the chain needs at least one backend"):
        Notifier([])
