"""The tray's brain, without Qt: snapshots in; what the user sees for each host,
the tray state, rule firings and the notification to send out.

`TrayApp` (gpu_tray/app/tray_app.py) owns one and only moves its results onto
widgets and timers, so everything decided here is testable with plain calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gpu_tray.channels.routing import Routed, route
from gpu_tray.core.availability import summarize
from gpu_tray.core.host_events import HostEvent, HostEventEngine
from gpu_tray.core.idle import IdleSample, IdleTracker, UnitKey
from gpu_tray.core.idle_rules import IdleRules
from gpu_tray.core.join import SCHEDULER_SOURCES, join_snapshots, short_name
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.people import people
from gpu_tray.core.rules import Firing, RuleEngine, notification_text, ssh_args
from gpu_tray.core.settings import Config, FreeThresholds, WatchSpec
from gpu_tray.platform.notify import Notification
from gpu_tray.presenter.tray_state import TrayState


class LoadedConfig(Protocol):
    """The config as the app loaded it (`gpu_tray.app.config_loading.LoadedConfig`)."""

    @property
    def config(self) -> Config: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    @property
    def watches_path(self) -> Path | None: ...
    @property
    def error(self) -> bool: ...


@dataclass(frozen=True)
class Observed:
    """What one snapshot changed."""

    #: What the user now sees for the snapshot's host; None when a scheduler view was
    #: folded into a twin of another name.
    shown: HostSnapshot | None
    firings: tuple[Firing, ...] = ()
    #: Set when the host's key is unknown or changed and this fingerprint was not
    #: shown to the user yet: the trust dialog should open for it.
    review_key: HostSnapshot | None = None
    #: `event = "host_down"` rules this snapshot set off (a host down, or back up).
    events: tuple[HostEvent, ...] = ()


class TrayController:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        notes: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self._notes = tuple(loaded.notes) + tuple(notes)
        self.problem: str | None = None
        self._clock = clock
        #: What the user sees: one snapshot per host, a Slurm node joined with its
        #: SSH or Prometheus twin. Insertion order is the menu's order.
        self.latest: dict[str, HostSnapshot] = {}
        # Every probe's latest, by (source, name), and by short name for joining.
        self._raw: dict[tuple[str, str], HostSnapshot] = {}
        self._by_short: dict[str, dict[tuple[str, str], None]] = {}
        self._joining = False  # set once a scheduler source reports: joins cost a lookup
        self._extra_notes: dict[str, str] = {}
        self._host_keys_shown: dict[str, str] = {}  # host -> fingerprint already shown
        self._ssh_args = {h.name: ssh_args(h) for h in self.config.hosts}
        self.engine = RuleEngine(
            self.config.watch,
            self.thresholds_for,
            self.config.notify.confirm_polls,
            clock=clock,
            ssh_args_for=lambda host: self._ssh_args.get(host, [host]),
        )
        self.events = HostEventEngine(
            self.config.watch, self.config.notify.confirm_polls, clock=clock
        )
        self._make_idle()

    def _make_idle(self) -> None:
        """Idle holders: a tracker fed by every shown snapshot, the rules that tell about
        them, and what history adds (seeded by `seed_history`, off the GUI thread)."""
        self.idle = IdleTracker(self.config.idle)
        self._own_users: dict[str, str | None] = {}
        self.idle_rules = IdleRules(
            self.config.watch,
            self.config.idle,
            own_user=lambda host: self._own_users.get(host),
            ssh_args_for=lambda host: self._ssh_args.get(host, [host]),
        )
        self.hours_day: dict[str, float] = {}
        self.hours_week: dict[str, float] = {}
        self.usually_free_by: dict[str, datetime] = {}

    def set_own_users(self, users: Mapping[str, str | None]) -> None:
        """Host -> the remote user SSH logs in as there: "your own" GPUs for reminders."""
        self._own_users = dict(users)

    def seed_history(
        self,
        samples: Mapping[UnitKey, Sequence[IdleSample]],
        hours_day: Mapping[str, float],
        hours_week: Mapping[str, float],
        usually_free_by: Mapping[str, datetime],
    ) -> None:
        """What the history says (read on a worker): idle stretches that began before
        this run, GPU-hours per user, and "usually free by" per host."""
        for key, unit_samples in samples.items():
            self.idle.seed(key, unit_samples)
        self.hours_day, self.hours_week = dict(hours_day), dict(hours_week)
        self.usually_free_by = dict(usually_free_by)

    def thresholds_for(self, host: str) -> FreeThresholds:
        return self.config.thresholds_for(host)

    # -- snapshots ------------------------------------------------------------------------

    def observe(self, snap: HostSnapshot) -> Observed:
        shown = self._take(snap)
        if shown is None:
            # A Slurm view folded into its measured twin is seen when the twin polls:
            # observing both would count one round twice against confirm_polls.
            return Observed(None)
        review = None
        key = shown.host_key
        if key is not None and self._host_keys_shown.get(shown.name) != key.fingerprint:
            self._host_keys_shown[shown.name] = key.fingerprint
            review = shown
        self.idle.observe(shown)
        idle = [
            f
            for f in self.idle_rules.observe(shown, self.idle, shown.polled_at.timestamp())
            if self.engine.snoozed_until(f.key) is None  # "Snooze 1 h" covers these too
        ]
        return Observed(
            shown,
            (*self.engine.observe(shown), *idle),
            review,
            tuple(self.events.observe(shown)),
        )

    def _take(self, snap: HostSnapshot) -> HostSnapshot | None:
        key = (snap.source, snap.name)
        self._raw[key] = snap
        self._by_short.setdefault(short_name(snap.name), {})[key] = None
        self._joining = self._joining or snap.source in SCHEDULER_SOURCES
        if not self._joining:
            self.latest[snap.name] = snap
            return snap
        related = [self._raw[k] for k in self._by_short[short_name(snap.name)]]
        joined = join_snapshots(related)
        kept = {j.name for j in joined}
        for s in related:
            if s.name not in kept:
                self.latest.pop(s.name, None)
        for j in joined:
            self.latest[j.name] = j  # in place: the menu keeps its order
        return next((j for j in joined if j.name == snap.name), None)

    def gone(self, kind: str, name: str) -> None:
        """A probe of this kind and name was removed (a source's stand-in retired)."""
        key = (kind, name)
        self._raw.pop(key, None)
        self._by_short.get(short_name(name), {}).pop(key, None)
        if not any(n == name for _, n in self._raw):
            self.latest.pop(name, None)
            self.engine.forget_host(name)
            self.events.forget_host(name)
            self.idle.forget_host(name)

    def any_stale(self) -> bool:
        return any(s.stale for s in self.latest.values())

    # -- what the tray shows --------------------------------------------------------------

    def set_note(self, key: str, text: str | None) -> None:
        if text:
            self._extra_notes[key] = text
        else:
            self._extra_notes.pop(key, None)

    def state(self, *, paused: bool, autostart: bool | None) -> TrayState:
        snaps = tuple(self.latest.values())
        summary = summarize(
            snaps,
            self.thresholds_for,
            watched=(
                self.engine.matches
                if any(s.event == "free" for s in self.engine.specs)
                else None
            ),
            paused=paused,
        )
        problem = (self.problem,) if self.problem else ()
        notes = self._notes + tuple(self._extra_notes.values()) + problem
        now = self._clock()
        idle_since = {
            k: since
            for k in self.idle.units()
            if (since := self.idle.idle_since(k, now)) is not None and k[0] in self.latest
        }
        return TrayState(
            snapshots=snaps,
            summary=summary,
            thresholds_for=self.thresholds_for,
            rules=tuple(self.engine.status()),
            paused=paused,
            autostart=autostart,
            title="gpu-tray (demo)" if self.config.demo else "gpu-tray",
            notes=notes,
            watches_saved=self.loaded.watches_path is not None,
            can_reload=self.loaded.error or self.problem is not None,
            idle_since=idle_since,
            people=tuple(people(snaps, idle_since, self.hours_day, self.hours_week)),
            usually_free_by=dict(self.usually_free_by),
        )

    # -- notifications --------------------------------------------------------------------

    @staticmethod
    def notification_actions(*, history: bool) -> tuple[tuple[str, str], ...]:
        actions = [("default", "Copy command"), ("copy", "Copy command")]
        if history:
            actions.append(("history", "Open history"))
        actions.append(("snooze", "Snooze 1 h"))
        return tuple(actions)

    @staticmethod
    def route(firings: Sequence[Firing], events: Sequence[HostEvent] = ()) -> Routed:
        """What goes to the desktop and what to each channel: each rule's `channels`."""
        return route(firings, events)

    def event_notification(self, event: HostEvent) -> Notification:
        """A desktop notification for a host going down or coming back (no actions:
        there is no command to copy)."""
        return Notification(event.summary, event.body, (), sound=self.config.notify.sound)

    def notification(self, firings: Sequence[Firing], *, history: bool) -> Notification:
        """One notification for the firings of one poll round."""
        summary, body = notification_text(firings)
        return Notification(
            summary,
            body,
            self.notification_actions(history=history),
            sound=self.config.notify.sound,
            payload=tuple(firings),
        )

    # -- watch rules ----------------------------------------------------------------------

    def snooze(self, keys: Iterable[str], seconds: float) -> int:
        keys = set(keys)
        self.engine.snooze(keys, seconds)
        return len(keys)

    def snooze_all(self, seconds: float) -> None:
        self.engine.snooze([s.key for s in self.engine.specs], seconds)

    def apply_watches(self, specs: Sequence[WatchSpec]) -> None:
        self.config = replace(self.config, watch=tuple(specs))
        self.engine.set_specs(specs)
        self.events.set_specs(specs)
        self.idle_rules.set_specs(specs)

    def watches_saved(self, saved: Config) -> None:
        """config.toml now holds `saved`'s rules: take its watch and notify settings."""
        self.problem = None
        self.config = replace(self.config, watch=saved.watch, notify=saved.notify)
        self.engine.confirm_polls = saved.notify.confirm_polls
        self.events.confirm_polls = saved.notify.confirm_polls
        self.apply_watches(saved.watch)

    # -- reload ---------------------------------------------------------------------------

    def reset(self, loaded: LoadedConfig, problem: str | None) -> None:
        """A new config: forget every host, keep snoozes that still name a rule."""
        self.loaded, self.config = loaded, loaded.config
        self._notes = loaded.notes + ((problem,) if problem else ())
        self.problem = None
        self._ssh_args = {h.name: ssh_args(h) for h in self.config.hosts}
        self.engine.set_specs(self.config.watch)
        self.engine.confirm_polls = self.config.notify.confirm_polls
        self.events.set_specs(self.config.watch)
        self.events.confirm_polls = self.config.notify.confirm_polls
        for name in self.latest:
            self.engine.forget_host(name)
            self.events.forget_host(name)
        self._make_idle()
        self.latest.clear()
        self._raw.clear()
        self._by_short.clear()
        self._joining = False
        self._host_keys_shown.clear()
