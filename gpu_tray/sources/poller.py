"""Concurrent, Qt-free polling: one worker thread per probe.

A probe that hangs or fails never delays another. Failed hosts back off;
hosts whose failure needs the user (wrong password, unknown or changed host
key) are not polled again until `reset()`: retrying a wrong password every
few seconds gets accounts locked. The last good data of a failing host is
kept and passed on marked stale, with its age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from gpu_tray.core.models import HostSnapshot, HostState, utcnow
from gpu_tray.sources.base import Probe

log = logging.getLogger(__name__)

SnapshotCallback = Callable[[HostSnapshot], None]
#: (source kind, host name): a host its probe no longer reports.
GoneCallback = Callable[[str, str], None]


MAX_BACKOFF_S = 300.0
# Suspend stops CLOCK_MONOTONIC but not CLOCK_BOOTTIME: a gap between them means
# the machine slept, and every connection is probably dead.
RESUME_GAP_S = 5.0


def _boottime() -> float:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not Linux
        return time.monotonic()


def guarded_poll(probe: Probe) -> list[HostSnapshot]:
    """probe.poll(), with our own bugs turned into a state instead of a dead worker."""
    try:
        return list(probe.poll())
    except Exception as exc:
        log.exception("probe %s raised", probe.name)
        return [
            HostSnapshot(
                probe.name,
                HostState.BAD_OUTPUT,
                f"Internal error while polling {probe.name}: {type(exc).__name__}: {exc}",
                source=probe.kind,
            )
        ]


class _Worker:
    def __init__(self, poller: Poller, probe: Probe) -> None:
        self.poller = poller
        self.probe = probe
        self.wake = threading.Event()
        self.failures = 0
        self.blocked = False  # waiting for the user (auth, host key)
        self.thread = threading.Thread(target=self._run, name=f"poll:{probe.name}", daemon=True)
        # Names this probe reported last round. A source that reports many hosts
        # (Prometheus, Slurm) first stands for itself ("prometheus:host:9090"); once it
        # reports real hosts, that stand-in must go, or it would count as failing forever.
        self.names: set[str] = set(probe.expected_hosts())

    def _run(self) -> None:
        p = self.poller
        while not p._stop.is_set():
            if p._paused.is_set():
                self.wake.wait()
                self.wake.clear()
                continue
            snaps = guarded_poll(self.probe)
            if p._stop.is_set():
                break
            for snap in snaps:
                p._publish(snap)
            if snaps:
                names = {s.name for s in snaps}
                for name in sorted(self.names - names):
                    p._forget(self.probe.kind, name)
                self.names = names
            delay = self._next_delay(snaps)
            if delay is None:
                self.wake.wait()
            else:
                self.wake.wait(delay)
            self.wake.clear()

    def _next_delay(self, snaps: list[HostSnapshot]) -> float | None:
        p = self.poller
        if snaps and all(s.state.needs_user for s in snaps):
            self.blocked = True
            log.info("%s: %s; waiting for the user", self.probe.name, snaps[0].state.value)
            return None
        self.blocked = False
        if not snaps or all(s.ok for s in snaps) or any(s.ok for s in snaps):
            self.failures = 0
            return p.interval_s
        self.failures += 1
        return min(p.interval_s * (2 ** min(self.failures, 10)), p.max_backoff_s)


class Poller:
    def __init__(
        self,
        probes: Sequence[Probe],
        interval_s: float,
        on_snapshot: SnapshotCallback,
        on_gone: GoneCallback | None = None,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.on_snapshot = on_snapshot
        self.on_gone = on_gone
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._lock = threading.Lock()  # never held by the GUI thread while it waits
        self._latest: dict[str, HostSnapshot] = {}
        self._last_good: dict[str, HostSnapshot] = {}
        self._workers = [_Worker(self, p) for p in probes]
        self._watchdog = threading.Thread(
            target=self._watch_resume, name="poll:resume", daemon=True
        )

    @property
    def probes(self) -> list[Probe]:
        return [w.probe for w in self._workers]

    def start(self) -> None:
        for w in self._workers:
            for name in w.probe.expected_hosts():
                self._publish(
                    HostSnapshot(name, HostState.CONNECTING, "Connecting…", source=w.probe.kind)
                )
            w.thread.start()
        self._watchdog.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask every worker to finish, then close the probes. Does not wait on the network
        for longer than `timeout`: workers are daemon threads."""
        self._stop.set()
        for w in self._workers:
            w.wake.set()
        deadline = time.monotonic() + timeout
        for w in self._workers:
            if w.thread.is_alive():
                w.thread.join(max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            try:
                w.probe.close()
            except Exception:
                log.exception("closing %s", w.probe.name)

    def refresh_now(self) -> None:
        """Poll every host that is not waiting for the user, now."""
        for w in self._workers:
            if not w.blocked:
                w.failures = 0
                w.wake.set()

    def reconnect_all(self) -> None:
        """After a resume or a network change, kept connections are probably dead: drop
        them (probes that keep one have `disconnect()`) and poll now."""
        for w in self._workers:
            disconnect = getattr(w.probe, "disconnect", None)
            if disconnect is not None:
                try:
                    disconnect()
                except Exception:
                    log.exception("disconnecting %s", w.probe.name)
        self.refresh_now()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
            self.refresh_now()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def reset(self, name: str | None = None) -> None:
        """The user changed credentials, trust or config: forget failures and poll now.

        `name` is a probe name or a host name; None resets every probe."""
        for w in self._workers:
            if name is None or w.probe.name == name or name in w.probe.expected_hosts():
                w.probe.reset()
                w.blocked = False
                w.failures = 0
                w.wake.set()

    def latest(self) -> dict[str, HostSnapshot]:
        with self._lock:
            return dict(self._latest)

    def _publish(self, snap: HostSnapshot) -> None:
        with self._lock:
            if snap.state is HostState.OK:
                snap = replace(snap, data_at=snap.data_at or snap.polled_at)
                self._last_good[snap.name] = snap
            elif snap.state is not HostState.CONNECTING and (
                good := self._last_good.get(snap.name)
            ):
                snap = good.as_stale(snap)
            self._latest[snap.name] = snap
        try:
            self.on_snapshot(snap)
        except Exception:
            log.exception("snapshot callback failed for %s", snap.name)

    def _forget(self, kind: str, name: str) -> None:
        with self._lock:
            self._latest.pop(name, None)
            self._last_good.pop(name, None)
        log.info("%s no longer reports %s", kind, name)
        if self.on_gone is not None:
            try:
                self.on_gone(kind, name)
            except Exception:
                log.exception("gone callback failed for %s", name)

    def _watch_resume(self) -> None:

        last_mono, last_boot = time.monotonic(), _boottime()
        while not self._stop.wait(2.0):
            mono, boot = time.monotonic(), _boottime()
            if (boot - last_boot) - (mono - last_mono) > RESUME_GAP_S:
                log.info("resume from sleep detected: reconnecting and polling every host now")
                self.reconnect_all()
            last_mono, last_boot = mono, boot


def poll_once(probes: Sequence[Probe], timeout_s: float = 30.0) -> list[HostSnapshot]:
    """One concurrent round, for `gpu-tray status`. A probe still running at the
    deadline is reported as a timeout instead of holding up the answer."""
    results: dict[int, list[HostSnapshot]] = {}
    threads = []
    for i, probe in enumerate(probes):

        def run(i: int = i, probe: Probe = probe) -> None:
            results[i] = guarded_poll(probe)

        t = threading.Thread(target=run, name=f"poll-once:{probe.name}", daemon=True)
        t.start()
        threads.append(t)
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    out: list[HostSnapshot] = []
    for i, probe in enumerate(probes):
        if i in results:
            out.extend(results[i])
        else:
            names = probe.expected_hosts() or (probe.name,)
            out.extend(
                HostSnapshot(
                    n,
                    HostState.TIMEOUT,
                    f"No answer from {n} within {timeout_s:g} s",
                    polled_at=utcnow(),
                    source=probe.kind,
                )
                for n in names
            )
    return out
