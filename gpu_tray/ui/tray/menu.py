"""The tray menu, rebuilt from the latest state when it opens (`aboutToShow`).

Hosts come first, each a submenu with its GPUs (model, memory, utilisation,
users); a GPU's line is its watch toggle. Host submenus are filled when they
open, so a 100-host cluster costs 100 menu entries, not 900, per opening.

On a StatusNotifierItem host every added, removed or changed entry is a D-Bus
signal (dbusmenu LayoutUpdated / ItemsPropertiesUpdated) that the panel acts
on: rebuilding on every opening sent 40 to 60 of them. So the menu is rebuilt
whole only when its `shape` (which entries it has) changed; when only what the
entries say changed (`view`: counts, colours, checks), those entries are
changed in place; when nothing changed, nothing is touched.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QIcon, QPixmap
from PySide6.QtWidgets import QMenu

from gpu_tray.core.availability import ThresholdsFor, host_units
from gpu_tray.core.join import host_notes
from gpu_tray.core.models import HostSnapshot, HostState, utcnow
from gpu_tray.core.rules import RuleStatus, describe, short_model
from gpu_tray.core.settings import WatchSpec
from gpu_tray.presenter.text import (
    MENU_LINE,
    age_text,
    disks_line,
    elide,
    gpu_line,
    health_mark,
    host_counts,
    host_status,
    load_line,
    mig_line,
    person_line,
    source_line,
    summary_line,
    when_free_text,
)
from gpu_tray.presenter.tray_state import TrayActions, TrayState
from gpu_tray.ui.tray.icon import dot_image

SNOOZE_S = 3600


_DOTS: dict[str, QIcon] = {}


def _dot(colour: str) -> QIcon:
    """A small disc in the icon's colours, for a host's line."""
    if colour not in _DOTS:
        icon = QIcon()
        for size in (10, 16):
            for scale in (1, 2):
                icon.addPixmap(QPixmap.fromImage(dot_image(colour, size, scale)))
        _DOTS[colour] = icon
    return _DOTS[colour]


def host_colour(snap: HostSnapshot, thresholds_for: ThresholdsFor) -> str:
    if snap.state is not HostState.OK:
        return "grey"
    free, total = host_counts(snap, thresholds_for)
    return "grey" if total == 0 else ("green" if free else "red")


class TrayMenu(QObject):
    def __init__(
        self,
        actions: TrayActions,
        state: Callable[[], TrayState],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        self.actions = actions
        self._state = state
        self._clock = clock
        self.menu = QMenu()
        self.menu.setObjectName("tray-menu")
        self.menu.aboutToShow.connect(self.rebuild)
        self._submenus: list[QMenu] = []
        #: The shape the menu was built for and what it shows now (None: never built),
        #: and what each host submenu was filled with.
        self._built: tuple | None = None
        self._shown: tuple = ()
        self._filled: dict[str, tuple] = {}
        #: Entries changed in place when the shape stays: (host submenu, its message line).
        self._host_entries: list[tuple[QMenu, QAction | None]] = []
        self._rule_entries: list[QAction] = []
        #: Stands in for entries a menu of this shape does not have (no watches: no snooze).
        self._nowhere = QAction(self)
        self._headline = self._pause = self._autostart = self._snooze = self._nowhere
        self._history = self._settings = self._nowhere
        self._dbus_labels = False
        #: How many times the menu was rebuilt whole, and patched in place (tests read them).
        self.rebuilds = 0
        self.patches = 0
        self.on_history: Callable[[], None] | None = None
        self.on_settings: Callable[[], None] | None = None
        #: "Review host key…" on a host whose key is unknown or changed: on_host_key(name).
        self.on_host_key: Callable[[str], None] | None = None

    def set_dbus_labels(self, on: bool) -> None:
        """The menu is exported over D-Bus (StatusNotifierItem): there a host draws each
        label with "_" as its mnemonic mark (dbusmenu), so "a_b" would show as "ab"."""
        if on != self._dbus_labels:
            self._dbus_labels = on
            self._built = None  # every label again, the other way
            self._filled.clear()

    def _label(self, text: str) -> str:
        return text.replace("_", "__") if self._dbus_labels else text

    # -- building -------------------------------------------------------------------------

    def _info(self, menu: QMenu, text: str) -> QAction:
        action = menu.addAction(self._label(elide(text)))
        action.setEnabled(False)
        if text != elide(text):
            action.setToolTip(text)
        return action

    def _submenu(self, parent: QMenu, title: str) -> QMenu:
        sub = QMenu(self._label(title), parent)
        sub.setToolTipsVisible(True)
        parent.addMenu(sub)
        self._submenus.append(sub)
        return sub

    def shape(self, state: TrayState) -> tuple:
        """What decides which entries the top-level menu and its Watch submenu have."""
        return (
            state.notes,
            tuple(
                (s.name, s.state not in (HostState.OK, HostState.CONNECTING) and bool(s.message))
                for s in state.snapshots
            ),
            tuple(sorted({g.name for s in state.snapshots for g in s.gpus if g.name})),
            tuple(r.spec.key for r in state.rules),
            any(r.snoozed_until for r in state.rules),
            state.watches_saved,
            state.can_reload,
        )

    def view(self, state: TrayState, now: datetime) -> tuple:
        """What the entries of a menu of the same shape say: changed in place."""
        t = state.thresholds_for
        return (
            f"{state.title}: {summary_line(state.summary)}",
            tuple(
                (f"{s.name} — {host_status(s, t, now)}", host_colour(s, t), f"    {s.message}")
                for s in state.snapshots
            ),
            tuple(_rule_text(r) for r in state.rules),
            _snooze_text(state),
            state.paused,
            state.autostart,
            self.on_history is not None,
            self.on_settings is not None,
        )

    def rebuild(self) -> None:
        state = self._state()
        now = self._clock()
        shape, view = self.shape(state), self.view(state, now)
        if shape == self._built:
            if view != self._shown:
                self._patch(self._shown, view)
                self._shown = view
            return
        self._built, self._shown = shape, view
        self.rebuilds += 1
        for sub in self._submenus:
            sub.deleteLater()
        self._submenus.clear()
        self._filled.clear()
        self._host_entries.clear()
        self._rule_entries.clear()
        self._snooze = self._nowhere
        menu = self.menu
        menu.clear()
        menu.setToolTipsVisible(True)
        watched = {r.spec.key for r in state.rules}

        self._headline = self._info(menu, f"{state.title}: {summary_line(state.summary)}")
        for note in state.notes:
            # Wrapped, not cut: the end of a config error says what is wrong.
            for line in textwrap.wrap(
                note, MENU_LINE, break_long_words=False, break_on_hyphens=False
            ):
                action = menu.addAction(self._label(line))
                action.setEnabled(False)
        menu.addSeparator()

        for snap in state.snapshots:
            title = f"{snap.name} — {host_status(snap, state.thresholds_for, now)}"
            when = when_free_text(
                snap, state.thresholds_for(snap.name), state.usually_free_by.get(snap.name)
            )
            if when:
                title += f", {when}"
            if mark := health_mark(snap.health):
                title += f" · {mark}"  # RAM or a disk over 90 %: a GPU there may be useless
            sub = self._submenu(menu, title)
            sub.setIcon(_dot(host_colour(snap, state.thresholds_for)))
            sub.aboutToShow.connect(lambda sub=sub, name=snap.name: self._fill_host(sub, name))
            message = None
            if snap.state not in (HostState.OK, HostState.CONNECTING) and snap.message:
                message = self._info(menu, f"    {snap.message}")
            self._host_entries.append((sub, message))
        if state.snapshots:
            menu.addSeparator()
        if state.people:
            self._add_people_menu(menu, state, now)

        self._add_watch_menu(menu, state, watched)
        refresh = menu.addAction("Refresh now")
        refresh.setObjectName("refresh")
        refresh.triggered.connect(lambda: self.actions.refresh_now())
        pause = menu.addAction("Pause polling")
        pause.setObjectName("pause")
        pause.setCheckable(True)
        pause.setChecked(state.paused)
        pause.triggered.connect(lambda checked: self.actions.set_paused(checked))
        self._pause = pause
        menu.addSeparator()

        history = menu.addAction("History…")
        history.setObjectName("history")
        history.setEnabled(self.on_history is not None)
        history.triggered.connect(lambda: self.on_history and self.on_history())
        self._history = history
        settings = menu.addAction("Settings…")
        settings.setObjectName("settings")
        settings.setEnabled(self.on_settings is not None)
        settings.triggered.connect(lambda: self.on_settings and self.on_settings())
        self._settings = settings
        autostart = menu.addAction("Start at login")
        autostart.setObjectName("autostart")
        autostart.setCheckable(True)
        autostart.setChecked(bool(state.autostart))
        autostart.setEnabled(state.autostart is not None)
        autostart.triggered.connect(lambda checked: self.actions.set_autostart(checked))
        self._autostart = autostart
        if state.can_reload:
            reload = menu.addAction("Reload configuration")
            reload.setObjectName("reload")
            reload.triggered.connect(lambda: self.actions.reload_config())
        menu.addSeparator()
        quit_ = menu.addAction("Quit")
        quit_.setObjectName("quit")
        quit_.triggered.connect(lambda: self.actions.quit())

    def _patch(self, old: tuple, new: tuple) -> None:
        """Change only the entries whose words, colour or check differ: one D-Bus
        ItemsPropertiesUpdated each on an SNI host, instead of a whole new layout."""
        self.patches += 1
        headline, hosts, rules, snooze, paused, autostart, history, settings = new
        if headline != old[0]:
            self._set_text(self._headline, headline)
        for (sub, message), before, (title, colour, note) in zip(
            self._host_entries, old[1], hosts, strict=True
        ):
            if title != before[0]:
                sub.setTitle(self._label(title))
            if colour != before[1]:
                sub.setIcon(_dot(colour))
            if message is not None and note != before[2]:
                self._set_text(message, note)
        for action, text, before in zip(self._rule_entries, rules, old[2], strict=True):
            if text != before:
                self._set_text(action, text)
        if snooze != old[3]:
            self._snooze.setText(snooze)
        self._pause.setChecked(paused)
        self._autostart.setChecked(bool(autostart))
        self._autostart.setEnabled(autostart is not None)
        self._history.setEnabled(history)
        self._settings.setEnabled(settings)

    def _set_text(self, action: QAction, text: str) -> None:
        action.setText(self._label(elide(text)))
        action.setToolTip(text if text != elide(text) else "")

    def _toggle(self, menu: QMenu, text: str, spec: WatchSpec, watched: set[str]) -> QAction:
        action = menu.addAction(self._label(text))
        action.setCheckable(True)
        action.setChecked(spec.key in watched)
        action.setData(spec.key)
        action.triggered.connect(
            lambda checked, spec=spec: (
                self.actions.add_watch(spec) if checked else self.actions.remove_watch(spec.key)
            )
        )
        return action

    def _host_signature(self, state: TrayState, snap: HostSnapshot | None, now: datetime) -> tuple:
        if snap is None:
            return ()
        units = host_units(snap, state.thresholds_for(snap.name))
        notes = host_notes(snap, state.thresholds_for)
        return (
            source_line(snap),
            snap.state,
            snap.message,
            snap.host_key is not None and self.on_host_key is not None,
            snap.stale and snap.age_s(now) is not None and age_text(snap.age_s(now) or 0),
            tuple(
                gpu_line(
                    g,
                    sum(1 for u in units if u.gpu_index == g.index and u.free),
                    sum(1 for u in units if u.gpu_index == g.index),
                    notes.get(g.index),
                )
                + "".join(mig_line(g, m.index) for m in g.mig_devices)
                for g in snap.gpus
            ),
            len(units),
            tuple(sorted(r.spec.key for r in state.rules)),
        )

    def _fill_host(self, sub: QMenu, name: str) -> None:
        state = self._state()
        snap = next((s for s in state.snapshots if s.name == name), None)
        now = self._clock()
        signature = self._host_signature(state, snap, now)
        if self._filled.get(name) == signature:
            return
        self._filled[name] = signature
        sub.clear()
        if snap is None:
            self._info(sub, "No longer polled")
            return
        watched = {r.spec.key for r in state.rules}
        self._info(sub, source_line(snap))
        if snap.health is not None:
            self._info(sub, load_line(snap.health))
            if disks := disks_line(snap.health):
                self._info(sub, disks)
            if mark := health_mark(snap.health):
                self._info(sub, mark)
        if snap.state is not HostState.OK:
            self._info(sub, f"{snap.state.value}: {snap.message or ''}".rstrip(": "))
            if snap.host_key is not None and self.on_host_key is not None:
                review = sub.addAction("Review host key…")
                review.setObjectName("review-host-key")
                review.triggered.connect(lambda: self.on_host_key and self.on_host_key(name))
            if snap.stale and (age := snap.age_s(now)) is not None:
                self._info(sub, f"Last data {age_text(age)} old:")
        if not snap.gpus:
            if snap.state is HostState.OK:
                self._info(sub, "No GPUs")
            return
        self._info(sub, "Click a GPU to be told when it is free")
        units = host_units(snap, state.thresholds_for(snap.name))
        notes = host_notes(snap, state.thresholds_for)
        for gpu in snap.gpus:
            mine = [u for u in units if u.gpu_index == gpu.index]
            free = sum(1 for u in mine if u.free)
            since = state.idle_since.get((name, gpu.index, None))
            idle_for = None if since is None else now.timestamp() - since
            line = gpu_line(gpu, free, len(mine), notes.get(gpu.index), idle_for)
            self._toggle(sub, line, WatchSpec(host=name, gpu=gpu.index), watched)

            for mig in gpu.mig_devices:
                self._info(sub, f"    {mig_line(gpu, mig.index)}")
        sub.addSeparator()
        self._toggle(sub, f"Any free GPU on {name}", WatchSpec(host=name), watched)
        for count in (2, 4, 8):
            if count <= len(units):
                self._toggle(
                    sub,
                    f"Any {count} free GPUs on {name}",
                    WatchSpec(host=name, count=count),
                    watched,
                )

    def _add_people_menu(self, menu: QMenu, state: TrayState, now: datetime) -> None:
        """Who holds how many GPUs now, how many idle since when, GPU-hours from history."""
        holding = sum(1 for p in state.people if p.gpus_now)
        sub = self._submenu(menu, f"People — {holding} holding GPUs")
        sub.setObjectName("people")
        self._info(sub, "GPUs held now · GPU-hours over the last 24 h and 7 days")
        for person in state.people:
            self._info(sub, person_line(person, now.timestamp()))

    def _add_watch_menu(self, menu: QMenu, state: TrayState, watched: set[str]) -> None:
        sub = self._submenu(menu, "Watch")
        sub.setObjectName("watch")
        if not state.watches_saved:
            self._info(sub, "Demo: watches last until you quit")
        self._toggle(sub, "Any free GPU anywhere", WatchSpec(), watched)
        models = sorted(
            {g.name for s in state.snapshots for g in s.gpus if g.name}, key=short_model
        )
        for model in models:
            self._toggle(sub, f"Any free {short_model(model)}", WatchSpec(model=model), watched)
        if state.rules:
            sub.addSeparator()
            self._info(sub, "Your watches (click to remove)")
            for rule in state.rules:
                text = _rule_text(rule)
                action = sub.addAction(self._label(elide(text)))
                self._rule_entries.append(action)
                action.setCheckable(True)
                action.setChecked(True)
                action.setData(rule.spec.key)
                action.triggered.connect(
                    lambda _checked, key=rule.spec.key: self.actions.remove_watch(key)
                )
            sub.addSeparator()
            self._snooze = sub.addAction(_snooze_text(state))
            if any(r.snoozed_until for r in state.rules):
                self._snooze.triggered.connect(lambda: self.actions.unsnooze_all())
            else:
                self._snooze.triggered.connect(lambda: self.actions.snooze_all(SNOOZE_S))


def _rule_text(rule: RuleStatus) -> str:
    text = describe(rule.spec)
    if rule.holding_hosts:
        text += " — free now"
    if rule.snoozed_until:
        until = datetime.fromtimestamp(rule.snoozed_until).strftime("%H:%M")
        text += f" — snoozed until {until}"
    return text


def _snooze_text(state: TrayState) -> str:
    snoozed = [r.snoozed_until for r in state.rules if r.snoozed_until]
    if not snoozed:
        return "Snooze notifications for 1 h"
    until = datetime.fromtimestamp(max(snoozed)).strftime("%H:%M")
    return f"Resume notifications (snoozed until {until})"
