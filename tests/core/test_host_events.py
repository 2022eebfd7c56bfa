"""`[[watch]] event = "host_down"`: once down after down_after_s, once back up after
confirm_polls good polls, nothing while it flaps. A fake clock, no threads."""

from __future__ import annotations

import pytest

from gpu_tray.core.host_events import HostEvent, HostEventEngine, duration_text
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import WatchSpec

ANY = WatchSpec(event="host_down")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ok(host: str = "node3") -> HostSnapshot:
    return HostSnapshot(host, HostState.OK)


def refused(host: str = "node3") -> HostSnapshot:
    return HostSnapshot(host, HostState.UNREACHABLE, f"Connection refused by {host}:22")


def timeout(host: str = "node3") -> HostSnapshot:
    return HostSnapshot(host, HostState.TIMEOUT, f"No answer from {host} within 10 s")


def feed(engine: HostEventEngine, clock: Clock, steps) -> list[HostEvent]:
    """steps: (seconds to advance, snapshot) pairs; returns every event in order."""
    out: list[HostEvent] = []
    for dt, snap in steps:
        clock.now += dt
        out.extend(engine.observe(snap))
    return out


def texts(events: list[HostEvent]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.summary, e.body) for e in events]


def test_down_once_after_down_after_s_and_back_up_once_with_the_outage_length() -> None:
    clock = Clock()
    engine = HostEventEngine([ANY], confirm_polls=2, clock=clock)
    assert feed(engine, clock, [(0, ok()), (10, refused()), (20, refused()), (20, refused())]) == []
    [down] = feed(engine, clock, [(20, refused())])  # 60 s after the first failure
    assert texts([down]) == [
        ("down", "node3 is down", "node3 has not answered for 60 s: Connection refused by node3:22")
    ]
    assert engine.down_hosts() == ["node3"]
    # Down for a long time: nothing repeats.
    assert feed(engine, clock, [(300, timeout())] * 10) == []
    clock.now += 840 - 60 - 3000  # the first good poll comes 14 min after the first failure
    [up] = feed(engine, clock, [(0, ok()), (10, ok())])
    assert texts([up]) == [("up", "node3 is back up", "node3 is back up (down 14 min)")]
    assert up.down_for_s == 840
    assert engine.down_hosts() == []
    assert feed(engine, clock, [(10, ok())] * 5) == []


def test_a_host_failing_for_less_than_down_after_s_says_nothing() -> None:
    clock = Clock()
    engine = HostEventEngine([ANY], confirm_polls=2, clock=clock)
    steps = [(10, refused()), (10, refused()), (10, ok()), (10, ok())] * 5
    assert feed(engine, clock, steps) == []


def test_a_single_good_poll_does_not_end_an_outage_before_it_is_announced() -> None:
    # Hysteresis on the way down: fail, ok, fail, ok... is one outage, announced once.
    clock = Clock()
    engine = HostEventEngine([WatchSpec(event="host_down", down_after_s=30)], 2, clock=clock)
    events = feed(engine, clock, [(10, refused()), (10, ok())] * 4)
    assert [(e.kind, e.down_for_s) for e in events] == [("down", 40)]


def test_a_flapping_host_that_is_down_does_not_come_back_up_until_confirmed() -> None:
    clock = Clock()
    engine = HostEventEngine([WatchSpec(event="host_down", down_after_s=10)], 3, clock=clock)
    assert [e.kind for e in feed(engine, clock, [(0, refused()), (10, refused())])] == ["down"]
    # Two good polls then a failure, again and again: never three in a row.
    assert feed(engine, clock, [(10, ok()), (10, ok()), (10, timeout())] * 6) == []
    [up] = feed(engine, clock, [(10, ok()), (10, ok()), (10, ok())])
    assert up.kind == "up"
    assert up.body == "node3 is back up (down 3 min)"  # 190 s: first failure to first good


def test_every_outage_is_announced_again_after_the_host_came_back() -> None:
    clock = Clock()
    engine = HostEventEngine([WatchSpec(event="host_down", down_after_s=5)], 1, clock=clock)
    kinds = [e.kind for e in feed(engine, clock, [(0, refused()), (5, refused()), (5, ok())] * 3)]
    assert kinds == ["down", "up"] * 3


def test_only_no_answer_is_down_and_connecting_is_ignored() -> None:
    clock = Clock()
    engine = HostEventEngine([WatchSpec(event="host_down", down_after_s=1)], 1, clock=clock)
    answered = [
        HostSnapshot("node3", state, "whatever")
        for state in HostState
        if state not in (HostState.UNREACHABLE, HostState.TIMEOUT)
    ]
    assert feed(engine, clock, [(100, s) for s in answered]) == []
    events = feed(
        engine,
        clock,
        [
            (0, refused()),
            (100, HostSnapshot("node3", HostState.CONNECTING, "Connecting…")),
            (0, timeout()),
        ],
    )
    assert texts(events) == [
        (
            "down",
            "node3 is down",
            "node3 has not answered for 2 min: No answer from node3 within 10 s",
        )
    ]


def test_a_rule_for_one_host_ignores_the_others_and_any_host_tracks_each() -> None:
    clock = Clock()
    only2 = WatchSpec(host="node2", event="host_down", down_after_s=10, channels=("lab",))
    engine = HostEventEngine([ANY, only2], 1, clock=clock)
    events = feed(
        engine,
        clock,
        [
            (0, refused("node2")),
            (0, refused("node3")),
            (60, refused("node2")),
            (0, refused("node3")),
        ],
    )
    assert [(e.spec.key, e.host, e.kind) for e in events] == [
        ("event=host_down;host=*;after=60", "node2", "down"),
        ("event=host_down;host=node2;after=10;channels=lab", "node2", "down"),
        ("event=host_down;host=*;after=60", "node3", "down"),
    ]
    assert engine.down_hosts() == ["node2", "node3"]
    engine.forget_host("node3")
    assert engine.down_hosts() == ["node2"]


def test_free_gpu_rules_are_not_host_events_and_changing_rules_keeps_outages() -> None:
    clock = Clock()
    engine = HostEventEngine([WatchSpec(host="node3", gpu=1), ANY], 1, clock=clock)
    assert engine.specs == [ANY]
    feed(engine, clock, [(0, refused()), (60, refused())])
    engine.set_specs([ANY, WatchSpec()])
    assert feed(engine, clock, [(60, refused())]) == []  # no second "down"
    assert [e.kind for e in feed(engine, clock, [(1, ok())])] == ["up"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.6, "60 s"),
        (89, "89 s"),
        (90, "2 min"),
        (840, "14 min"),
        (5340, "89 min"),
        (5400, "1 h 30 min"),
        (7200, "2 h"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
        (86400 * 2, "2 d"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_confirm_polls_must_be_positive() -> None:
    with pytest.raises(ValueError, match="confirm_polls must be at least 1"):
        HostEventEngine([ANY], 0)
