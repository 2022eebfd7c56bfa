"""The sender's own logic (retries, order, status lines, shutdown), with a scripted
deliver function in place of Apprise (tested for real in test_deliver_real.py)."""

from __future__ import annotations

import threading

from gpu_tray.channels.deliver import Delivery
from gpu_tray.channels.message import Message
from gpu_tray.channels.sender import ChannelSender

A = Message("GPU free on node3", "node3: GPU 0 (H100 80GB) is free, 79 GiB")
B = Message("node3 is down", "node3 has not answered for 60 s: Connection refused")


class Script:
    """deliver(url, message): answers from a list per URL, then ok."""

    def __init__(self, answers: dict[str, list[Delivery]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, message: Message) -> Delivery:
        with self.lock:
            self.calls.append((url, message.title))
            queue = self.answers.get(url, [])
            return queue.pop(0) if queue else Delivery(True)


def urls(name: str) -> str | None:
    return {"lab": "json://lab/secret", "phone": "ntfy://phone/topic"}.get(name)


def test_delivers_in_order_and_says_nothing_when_all_goes_well() -> None:
    script, statuses = Script(), []
    sender = ChannelSender(urls, deliver=script, on_status=lambda *a: statuses.append(a))
    sender.send("lab", A)
    sender.send("lab", B)
    sender.send("phone", A)
    assert sender.wait_idle(5)
    assert [c for c in script.calls if c[0].startswith("json")] == [
        ("json://lab/secret", "GPU free on node3"),
        ("json://lab/secret", "node3 is down"),
    ]
    assert ("ntfy://phone/topic", "GPU free on node3") in script.calls
    assert sorted(sender.results) == [
        ("lab", "GPU free on node3", True),
        ("lab", "node3 is down", True),
        ("phone", "GPU free on node3", True),
    ]
    assert sorted(statuses) == [("lab", None), ("lab", None), ("phone", None)]
    sender.close(1)


def test_a_failing_channel_is_retried_then_reported_and_cleared() -> None:
    bad = Delivery(
        False, "Failed to send JSON POST notification: Internal server error., error=500."
    )
    script, statuses = Script({"json://lab/secret": [bad, bad]}), []
    sender = ChannelSender(
        urls, deliver=script, on_status=lambda *a: statuses.append(a), retry_delays_s=(0.01, 0.02)
    )
    sender.send("lab", A)
    assert sender.wait_idle(5)
    assert script.calls == [("json://lab/secret", "GPU free on node3")] * 3
    assert statuses == [
        (
            "lab",
            "Channel lab: not delivered: Failed to send JSON POST "
            "notification: Internal server error., error=500.; retrying in 0.01 s",
        ),
        (
            "lab",
            "Channel lab: not delivered: Failed to send JSON POST "
            "notification: Internal server error., error=500.; retrying in 0.02 s",
        ),
        ("lab", None),
    ]
    assert sender.results == [("lab", "GPU free on node3", True)]


def test_retries_are_bounded_and_a_dead_channel_does_not_hold_up_another() -> None:
    bad = Delivery(False, "A Connection error occurred sending JSON notification to lab.")
    script, statuses = Script({"json://lab/secret": [bad] * 10}), []
    sender = ChannelSender(
        urls,
        deliver=script,
        on_status=lambda *a: statuses.append(a),
        retry_delays_s=(0.01, 0.01, 0.01),
    )
    sender.send("lab", A)
    sender.send("phone", B)
    assert sender.wait_idle(5)
    assert script.calls.count(("json://lab/secret", "GPU free on node3")) == 4
    assert ("phone", "node3 is down", True) in sender.results
    assert ("lab", "GPU free on node3", False) in sender.results
    assert statuses[-1] != ("lab", None)
    assert (
        "lab",
        "Channel lab: gave up after 4 tries: A Connection error "
        "occurred sending JSON notification to lab.",
    ) in statuses


def test_no_url_in_the_keyring_is_a_failure_that_says_how_to_fix_it() -> None:
    statuses = []
    sender = ChannelSender(
        urls, deliver=Script(), on_status=lambda *a: statuses.append(a), retry_delays_s=()
    )
    sender.send("slack", A)
    assert sender.wait_idle(5)
    assert statuses == [
        (
            "slack",
            "Channel slack: gave up after 1 tries: no URL in the system "
            "keyring (add one: `gpu-tray channel add slack`)",
        )
    ]


def test_close_cuts_the_back_off_short_with_one_last_try() -> None:
    bad = Delivery(False, "down")
    script = Script({"json://lab/secret": [bad] * 10})
    sender = ChannelSender(urls, deliver=script, retry_delays_s=(3600,))
    sender.send("lab", A)
    while not script.calls:
        threading.Event().wait(0.01)
    sender.close(5)
    assert script.calls == [("json://lab/secret", "GPU free on node3")] * 2
    assert sender.results == [("lab", "GPU free on node3", False)]
    sender.send("lab", B)  # after close: refused, not queued
    assert sender.wait_idle(1)
    assert len(script.calls) == 2


def test_retry_now_ends_the_back_off() -> None:
    bad = Delivery(False, "down")
    script = Script({"json://lab/secret": [bad]})
    sender = ChannelSender(urls, deliver=script, retry_delays_s=(3600,))
    sender.send("lab", A)
    while not script.calls:
        threading.Event().wait(0.01)
    sender.retry_now()
    assert sender.wait_idle(5)
    assert sender.results == [("lab", "GPU free on node3", True)]
    sender.close(1)
