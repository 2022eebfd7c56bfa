"""Which firing goes where: the desktop when a rule lists "desktop", and each channel
it names. One message per channel per poll round; a host event said once per
channel even when several rules send it there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpu_tray.channels.message import Message, event_message, firings_message
from gpu_tray.core.host_events import HostEvent
from gpu_tray.core.rules import Firing


@dataclass(frozen=True, slots=True)
class Routed:
    desktop_firings: tuple[Firing, ...] = ()
    desktop_events: tuple[HostEvent, ...] = ()
    #: (channel name, message), in the order the rules name them.
    channels: tuple[tuple[str, Message], ...] = ()


def route(firings: Sequence[Firing], events: Sequence[HostEvent] = ()) -> Routed:
    desktop = tuple(f for f in firings if f.spec.to_desktop)
    by_channel: dict[str, list[Firing]] = {}
    for f in firings:
        for name in f.spec.named_channels:
            by_channel.setdefault(name, []).append(f)
    out: dict[tuple[str, Message], None] = {
        (name, firings_message(fs)): None for name, fs in by_channel.items()
    }
    desktop_events: dict[tuple[str, str], HostEvent] = {}
    for e in events:
        if e.spec.to_desktop:
            desktop_events.setdefault((e.host, e.kind), e)
        for name in e.spec.named_channels:
            out.setdefault((name, event_message(e)), None)
    return Routed(desktop, tuple(desktop_events.values()), tuple(out))
