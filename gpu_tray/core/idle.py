"""Idle holders: a GPU (or MIG unit) that has processes but has done (almost) nothing.

A unit is *held idle* when every sample of an unbroken stretch ending now had

- at least one compute process on the unit (it is *held*), and
- a known utilisation at or under `[idle] max_utilization_pct`,

and that stretch has lasted at least `[idle] after_min`. `idle_since` is the
time of the stretch's first sample.

What breaks a stretch (precisely; the tests replay each case):

- **One blip resets it.** A single sample above the threshold ends the stretch;
  the next low sample starts a new one. A job that wakes for ten seconds every
  half hour is not idle.
- **No process** (the holder let go) ends it.
- **Unknown utilisation** (`[N/A]`; always so on MIG units) ends it: we never
  call a unit idle on a reading we do not have. MIG units are therefore never
  reported held idle.
- **A gap** longer than `MAX_GAP_S` between two samples (the app was not
  running, the host was down) ends it: nobody saw what happened in between.

Pure and Qt-free: `idle_since()` folds a sequence of samples (from the history
store and the current poll); `IdleTracker` folds the same way one poll at a
time for the tray.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gpu_tray.core.models import GpuSample, HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import IdleSettings

#: Two samples further apart than this do not continue a stretch (10 minutes).
MAX_GAP_S = 600.0

#: A unit: (host, GPU index, MIG index or None).
UnitKey = tuple[str, int, int | None]


@dataclass(frozen=True, slots=True)
class IdleSample:
    """One poll of one unit, as far as idleness goes."""

    ts: float  # epoch seconds, UTC
    held: bool  # at least one compute process on the unit
    util: int | None  # utilisation in percent; None when unknown
    users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Stretch:
    """The current low-utilisation, held stretch of a unit (maybe not long enough yet)."""

    start: float | None  # first sample of the stretch; None: not in a stretch
    last: float | None  # the latest sample seen (for the gap rule)
    users: tuple[str, ...] = ()

    def idle_since(self, now: float, settings: IdleSettings) -> float | None:
        """The stretch's start when it has lasted at least `after_min` by `now`."""
        if self.start is None or now - self.start < settings.after_s:
            return None
        return self.start


EMPTY = Stretch(None, None)


def step(state: Stretch, sample: IdleSample, settings: IdleSettings) -> Stretch:
    """Fold one sample into a stretch. Samples must come in time order."""
    if state.last is not None and sample.ts <= state.last:
        return state  # a repeat or out-of-order sample changes nothing
    low = sample.held and sample.util is not None and sample.util <= settings.max_utilization_pct
    if not low:
        return Stretch(None, sample.ts)
    gap = state.last is not None and sample.ts - state.last > MAX_GAP_S
    if state.start is None or gap:
        return Stretch(sample.ts, sample.ts, sample.users)
    return Stretch(state.start, sample.ts, sample.users)


def fold(samples: Iterable[IdleSample], settings: IdleSettings) -> Stretch:
    state = EMPTY
    for s in samples:
        state = step(state, s, settings)
    return state


def idle_since(
    samples: Iterable[IdleSample], settings: IdleSettings, now: float | None = None
) -> float | None:
    """When the unit became held idle (epoch seconds), or None when it is not held idle.

    `now` defaults to the last sample's time: a unit is judged on what was seen."""
    state = fold(samples, settings)
    if state.last is None:
        return None
    return state.idle_since(state.last if now is None else now, settings)


def stretches(samples: Iterable[IdleSample], settings: IdleSettings) -> list[tuple[float, float]]:
    """Every held-idle stretch in `samples` as (start, end): from its first low sample
    to its last, kept when it lasted at least `after_min` (what the history window
    shades). The same fold as `idle_since`, so the two never disagree."""
    out: list[tuple[float, float]] = []
    state = EMPTY
    last_low: float | None = None

    def close() -> None:
        start = state.start
        if start is not None and last_low is not None and last_low - start >= settings.after_s:
            out.append((start, last_low))

    for s in samples:
        new = step(state, s, settings)
        if new is state:
            continue
        if new.start != state.start:
            close()
        state = new
        last_low = s.ts if new.start is not None else None
    close()
    return out


def unit_samples(snap: HostSnapshot) -> dict[UnitKey, IdleSample]:
    """What one poll says about each unit's idleness. Nothing for a failed or stale poll:
    old data says nothing about now (and the gap rule ends the stretch if it lasts)."""
    if snap.state is not HostState.OK or snap.stale:
        return {}
    ts = snap.polled_at.timestamp()
    out: dict[UnitKey, IdleSample] = {}
    for gpu in snap.gpus:
        if gpu.mig_enabled and gpu.mig_devices:
            for mig in gpu.mig_devices:
                users = tuple(dict.fromkeys(p.user for p in mig.processes if p.user))
                # MIG utilisation is never reported: never idle (see the module doc).
                out[(snap.name, gpu.index, mig.index)] = IdleSample(
                    ts, bool(mig.processes), None, users
                )
            continue
        out[(snap.name, gpu.index, None)] = gpu_sample(ts, gpu)
    return out


def idle_map(
    history: Mapping[UnitKey, Sequence[IdleSample]],
    snaps: Iterable[HostSnapshot],
    settings: IdleSettings,
) -> dict[UnitKey, float]:
    """`idle_since` of every unit held idle at its host's poll: the unit's history
    (oldest first) with this poll on top. What `gpu-tray status` reports."""
    out: dict[UnitKey, float] = {}
    for snap in snaps:
        now = snap.polled_at.timestamp()
        for key, sample in unit_samples(snap).items():
            state = step(fold(history.get(key, ()), settings), sample, settings)
            if (since := state.idle_since(now, settings)) is not None:
                out[key] = since
    return out


def gpu_sample(ts: float, gpu: GpuSample) -> IdleSample:
    util = gpu.utilization_pct
    return IdleSample(
        ts,
        bool(gpu.processes),
        None if util is NA else int(util),  # type: ignore[arg-type]
        gpu.users,
    )


class IdleTracker:
    """The tray's running fold: one `Stretch` per unit, updated on every poll.

    `seed()` starts a unit from its history (read off the GUI thread) so that a
    GPU idle since before the app started shows its real `idle_since`."""

    def __init__(self, settings: IdleSettings) -> None:
        self.settings = settings
        self._stretches: dict[UnitKey, Stretch] = {}
        self._first_seen: dict[UnitKey, float] = {}

    def seed(self, key: UnitKey, samples: Iterable[IdleSample]) -> None:
        history = fold(samples, self.settings)
        current = self._stretches.get(key)
        if current is None:
            self._stretches[key] = history
            return
        # Polls seen since the app started come after the history: the history's
        # stretch carries on only when the live one began at the first live poll
        # (nothing broke it since) and within MAX_GAP_S of the history's last sample.
        first = self._first_seen.get(key)
        if (
            history.start is not None
            and history.last is not None
            and current.start is not None
            and current.start == first
            and current.start - history.last <= MAX_GAP_S
        ):
            self._stretches[key] = Stretch(history.start, current.last, current.users)

    def observe(self, snap: HostSnapshot) -> None:
        for key, sample in unit_samples(snap).items():
            self._first_seen.setdefault(key, sample.ts)
            self._stretches[key] = step(self._stretches.get(key, EMPTY), sample, self.settings)

    def forget_host(self, host: str) -> None:
        for key in [k for k in self._stretches if k[0] == host]:
            del self._stretches[key]
            self._first_seen.pop(key, None)

    def units(self) -> list[UnitKey]:
        return list(self._stretches)

    def stretch(self, key: UnitKey) -> Stretch:
        return self._stretches.get(key, EMPTY)

    def idle_since(self, key: UnitKey, now: float) -> float | None:
        return self.stretch(key).idle_since(now, self.settings)

    def held_idle(self, now: float) -> dict[UnitKey, Stretch]:
        """Every unit held idle at `now`, with its stretch."""
        return {
            k: s for k, s in self._stretches.items() if s.idle_since(now, self.settings) is not None
        }


def iso_utc(ts: float | None) -> str | None:
    """ISO 8601 UTC with a Z, as `status --json` writes times."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: float) -> str:
    """ "2 h 10 min" | "45 min" | "3 d 4 h": how long a unit has been idle."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
