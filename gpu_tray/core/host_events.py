"""Host events: `[[watch]] event = "host_down"`, as the lab's Slack bot did them.

What counts as down: a poll that got no answer from the host at all
(`unreachable`: refused, DNS, no route; or `timeout`). A host that answers,
even with a wrong password, an unknown key or a broken driver, is up: those
are problems of gpu-tray's access or of the GPUs, and have their own states.
`connecting` says nothing either way and is ignored.

The rule, per (rule, host), with hysteresis both ways so that a flapping host
does not spam:

- the outage starts at the first failed poll;
- "down" fires once, at the first failed poll that comes `down_after_s` or more
  after the outage started. A good poll in between does not end the outage:
  only `confirm_polls` good polls in a row do (then nothing is sent, because
  nothing was announced);
- while the host stays down nothing repeats, whatever it does, until it has
  answered `confirm_polls` polls in a row; then "back up" fires once, saying
  how long it was down (from the first failed poll to the first of those
  good polls), and the rule is armed again for the next outage.

Qt-free, with an injectable clock: the tray feeds it on the GUI thread,
`gpu-tray watch` from its loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import WatchSpec

Clock = Callable[[], float]

#: States that mean "no answer from the host".
DOWN_STATES = frozenset({HostState.UNREACHABLE, HostState.TIMEOUT})


def duration_text(seconds: float) -> str:
    """ "45 s", "14 min", "2 h 5 min", "3 d 4 h" """
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True, slots=True)
class HostEvent:
    """One message's worth: a host went down, or came back up."""

    spec: WatchSpec
    host: str
    kind: Literal["down", "up"]
    #: down: how long it has failed so far; up: how long it was down.
    down_for_s: float
    #: down: the failing state and its message, as the poll reported them.
    state: HostState | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def summary(self) -> str:
        """ "node3 is down" | "node3 is back up" """
        return f"{self.host} is down" if self.kind == "down" else f"{self.host} is back up"

    @property
    def body(self) -> str:
        """ "node3 is back up (down 14 min)" | "node3 has not answered for 60 s: ..." """
        if self.kind == "up":
            return f"{self.host} is back up (down {duration_text(self.down_for_s)})"
        text = f"{self.host} has not answered for {duration_text(self.down_for_s)}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class _Outage:
    since: float  # the first failed poll
    announced: bool = False
    good: int = 0  # good polls in a row since the last failed one
    first_good_at: float = 0.0


class HostEventEngine:
    def __init__(
        self, specs: Iterable[WatchSpec], confirm_polls: int, *, clock: Clock = time.time
    ) -> None:
        if confirm_polls < 1:
            raise ValueError("confirm_polls must be at least 1")
        self.confirm_polls = confirm_polls
        self._clock = clock
        self._specs: dict[str, WatchSpec] = {}
        self._outages: dict[tuple[str, str], _Outage] = {}
        self.set_specs(specs)

    @property
    def specs(self) -> list[WatchSpec]:
        return list(self._specs.values())

    def set_specs(self, specs: Iterable[WatchSpec]) -> None:
        """Replace the rule set; rules that stay keep their outages (no second "down")."""
        self._specs = {s.key: s for s in specs if s.event == "host_down"}
        self._outages = {k: v for k, v in self._outages.items() if k[0] in self._specs}

    def forget_host(self, host: str) -> None:
        self._outages = {k: v for k, v in self._outages.items() if k[1] != host}

    def down_hosts(self) -> list[str]:
        """Hosts announced down and not back up yet."""
        return sorted({h for (_, h), o in self._outages.items() if o.announced})

    def observe(self, snap: HostSnapshot) -> list[HostEvent]:
        """Feed one host's snapshot; returns the events it causes (each at most once)."""
        if snap.state is HostState.CONNECTING:
            return []
        now = self._clock()
        events: list[HostEvent] = []
        for key, spec in self._specs.items():
            if spec.host is not None and spec.host != snap.name:
                continue
            slot = (key, snap.name)
            outage = self._outages.get(slot)
            if snap.state in DOWN_STATES:
                if outage is None:
                    outage = self._outages[slot] = _Outage(since=now)
                outage.good = 0
                if not outage.announced and now - outage.since >= spec.down_after_s:
                    outage.announced = True
                    events.append(
                        HostEvent(
                            spec, snap.name, "down", now - outage.since, snap.state, snap.message
                        )
                    )
                continue
            if outage is None:
                continue
            outage.good += 1
            if outage.good == 1:
                outage.first_good_at = now
            if outage.good >= self.confirm_polls:
                del self._outages[slot]
                if outage.announced:
                    events.append(
                        HostEvent(spec, snap.name, "up", outage.first_good_at - outage.since)
                    )
        return events
