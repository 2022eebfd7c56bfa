"""What a channel is told: the same words as the desktop notification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpu_tray.core.host_events import HostEvent
from gpu_tray.core.rules import Firing, notification_text


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


TEST_MESSAGE = Message("gpu-tray test", "This channel works: gpu-tray can reach it.")


def firings_message(firings: Sequence[Firing]) -> Message:
    """One message for the firings of one poll round: "GPU free on node3" and a line each."""
    title, body = notification_text(firings)
    return Message(title, body)


def event_message(event: HostEvent) -> Message:
    """ "node3 is back up" / "node3 is back up (down 14 min)" """
    return Message(event.summary, event.body)
