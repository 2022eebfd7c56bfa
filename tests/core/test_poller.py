"""The poller's own logic, with scripted probes (unit tests: no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gpu_tray.core.models import GpuSample, HostSnapshot, HostState
from gpu_tray.sources.poller import Poller, poll_once


class ScriptedProbe:
    """Returns scripted states in order; blocks forever when told to (a black-holed host)."""

    kind = "test"

    def __init__(self, name: str, states: list[HostState], block: threading.Event | None = None):
        self.name = name
        self._states: Iterator[HostState] = iter(states)
        self._block = block
        self.polls = 0
        self.resets = 0
        self.closed = False
        self.polled = threading.Event()

    def expected_hosts(self) -> tuple[str, ...]:
        return (self.name,)

    def poll(self) -> list[HostSnapshot]:
        if self._block is not None:
            self._block.wait()
        self.polls += 1
        state = next(self._states, HostState.OK)
        gpus = (GpuSample(0, "GPU-x", "T4", 15360, 0, 0),) if state is HostState.OK else ()
        self.polled.set()
        return [
            HostSnapshot(self.name, state, None if state is HostState.OK else "failed", gpus=gpus)
        ]

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True


class Collector:
    def __init__(self) -> None:
        self.snaps: list[HostSnapshot] = []
        self.cond = threading.Condition()

    def __call__(self, snap: HostSnapshot) -> None:
        with self.cond:
            self.snaps.append(snap)
            self.cond.notify_all()

    def wait_for(self, pred, timeout: float = 10.0) -> list[HostSnapshot]:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.snaps), timeout), self.snaps
            return list(self.snaps)


def of(snaps: list[HostSnapshot], name: str) -> list[HostSnapshot]:
    return [s for s in snaps if s.name == name]


def test_a_blocked_host_never_delays_the_others() -> None:
    hang = threading.Event()
    dead = ScriptedProbe("dead", [], block=hang)
    alive = ScriptedProbe("alive", [HostState.OK] * 100)
    got = Collector()
    poller = Poller([dead, alive], interval_s=0.01, on_snapshot=got)
    poller.start()
    try:
        snaps = got.wait_for(lambda s: len([x for x in of(s, "alive") if x.ok]) >= 5)
        assert [s.state for s in of(snaps, "dead")] == [HostState.CONNECTING]
    finally:
        hang.set()
        poller.stop()
    assert dead.closed and alive.closed


def test_failed_host_keeps_last_good_data_marked_stale() -> None:
    probe = ScriptedProbe("h", [HostState.OK, HostState.TIMEOUT])
    got = Collector()
    poller = Poller([probe], interval_s=0.01, on_snapshot=got, max_backoff_s=60)
    poller.start()
    try:
        snaps = got.wait_for(lambda s: any(x.state is HostState.TIMEOUT for x in s))
    finally:
        poller.stop()
    ok = next(s for s in snaps if s.ok)
    failed = next(s for s in snaps if s.state is HostState.TIMEOUT)
    assert failed.stale and failed.gpus == ok.gpus
    assert failed.data_at == ok.polled_at
    assert failed.message == "failed"
    assert poller.latest()["h"].stale


@pytest.mark.parametrize(
    "state", [HostState.AUTH_FAILED, HostState.HOST_KEY_UNKNOWN, HostState.HOST_KEY_CHANGED]
)
def test_user_fixable_failures_are_not_retried_until_reset(state: HostState) -> None:
    probe = ScriptedProbe("h", [state, HostState.OK])
    got = Collector()
    poller = Poller([probe], interval_s=0.01, on_snapshot=got)
    poller.start()
    try:
        got.wait_for(lambda s: any(x.state is state for x in s))
        # Many intervals pass and a refresh is asked for: still no second attempt.
        poller.refresh_now()
        assert not threading.Event().wait(0.3)
        assert probe.polls == 1
        poller.reset("h")
        snaps = got.wait_for(lambda s: any(x.ok for x in s))
        assert probe.resets == 1
        assert snaps[-1].ok
    finally:
        poller.stop()


def test_failures_back_off() -> None:
    probe = ScriptedProbe("h", [HostState.UNREACHABLE] * 50)
    got = Collector()
    poller = Poller([probe], interval_s=0.05, on_snapshot=got, max_backoff_s=0.4)
    poller.start()
    try:
        got.wait_for(lambda s: len(of(s, "h")) >= 5, timeout=20)
        worker = poller._workers[0]
        assert worker.failures >= 3
        assert worker._next_delay([HostSnapshot("h", HostState.UNREACHABLE)]) == 0.4
    finally:
        poller.stop()


def test_pause_stops_polling_and_resume_polls_now() -> None:
    probe = ScriptedProbe("h", [HostState.OK] * 1000)
    got = Collector()
    poller = Poller([probe], interval_s=3600, on_snapshot=got)
    poller.start()
    try:
        got.wait_for(lambda s: any(x.ok for x in s))
        poller.set_paused(True)
        poller.refresh_now()
        assert poller.paused
        # The paused worker is parked: the refresh above must not have produced a poll.
        assert not threading.Event().wait(0.2)
        count = probe.polls
        assert count == 1
        poller.set_paused(False)
        got.wait_for(lambda s: len([x for x in s if x.ok]) >= 2)
        assert probe.polls == 2
    finally:
        poller.stop()


def test_a_probe_that_raises_becomes_a_state() -> None:
    class Broken(ScriptedProbe):
        def poll(self) -> list[HostSnapshot]:
            raise RuntimeError("boom")

    snaps = poll_once([Broken("b", [])])
    assert [(s.name, s.state, s.message) for s in snaps] == [
        ("b", HostState.BAD_OUTPUT, "Internal error while polling b: RuntimeError: boom")
    ]


def test_poll_once_reports_a_hung_probe_as_timeout() -> None:
    hang = threading.Event()
    try:
        snaps = poll_once(
            [ScriptedProbe("dead", [], block=hang), ScriptedProbe("ok", [HostState.OK])],
            timeout_s=0.5,
        )
    finally:
        hang.set()
    assert [(s.name, s.state, s.message) for s in snaps] == [
        ("dead", HostState.TIMEOUT, "No answer from dead within 0.5 s"),
        ("ok", HostState.OK, None),
    ]


def test_reconnect_all_drops_kept_connections_and_polls_now() -> None:
    class Keeper(ScriptedProbe):
        disconnects = 0

        def disconnect(self) -> None:
            self.disconnects += 1

    keeper = Keeper("k", [HostState.OK] * 10)
    plain = ScriptedProbe("p", [HostState.OK] * 10)  # keeps no connection: no disconnect()
    got = Collector()
    poller = Poller([keeper, plain], interval_s=3600, on_snapshot=got)
    poller.start()
    try:
        got.wait_for(lambda s: len([x for x in s if x.ok]) == 2)
        poller.reconnect_all()
        got.wait_for(lambda s: len([x for x in s if x.ok]) == 4)
        assert (keeper.disconnects, keeper.polls, plain.polls) == (1, 2, 2)
    finally:
        poller.stop()


def test_a_name_the_probe_stops_reporting_is_gone() -> None:
    """A multi-host source first reports itself (no host known yet), then real hosts."""

    class Source(ScriptedProbe):
        def expected_hosts(self) -> tuple[str, ...]:
            return ()

        def poll(self) -> list[HostSnapshot]:
            self.polls += 1
            if self.polls == 1:
                return [HostSnapshot("prom:9090", HostState.UNREACHABLE, "refused")]
            return [HostSnapshot(n, HostState.OK) for n in ("gpu01", "gpu02")]

    got = Collector()
    gone: list[tuple[str, str]] = []
    poller = Poller([Source("prom:9090", [])], 0.01, got, on_gone=lambda *a: gone.append(a))
    poller.start()
    try:
        got.wait_for(lambda s: len([x for x in s if x.ok]) >= 4)
        assert gone == [("test", "prom:9090")]
        assert set(poller.latest()) == {"gpu01", "gpu02"}
    finally:
        poller.stop()
