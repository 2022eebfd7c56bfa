"""The tray menu, rebuilt from the latest state every time it opens (`aboutToShow`).

Hosts come first, each a submenu with its GPUs (model, memory, utilisation,
users); a GPU's line is its watch toggle. Host submenus are filled when they
open, so a 100-host cluster costs 100 menu entries, not 900, per opening.
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
from gpu_tray.core.rules import describe, short_model
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
    source_line,
    summary_line,
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
        self.on_history: Callable[[], None] | None = None
        self.on_settings: Callable[[], None] | None = None
        #: "Review host key…" on a host whose key is unknown or changed: on_host_key(name).
        self.on_host_key: Callable[[str], None] | None = None

    # -- building -------------------------------------------------------------------------

    def _info(self, menu: QMenu, text: str) -> QAction:
        action = menu.addAction(elide(text))
        action.setEnabled(False)
        if text != elide(text):
            action.setToolTip(text)
        return action

    def _submenu(self, parent: QMenu, title: str) -> QMenu:
        sub = QMenu(title, parent)
        sub.setToolTipsVisible(True)
        parent.addMenu(sub)
        self._submenus.append(sub)
        return sub

    def rebuild(self) -> None:
        for sub in self._submenus:
            sub.deleteLater()
        self._submenus.clear()
        menu = self.menu
        menu.clear()
        menu.setToolTipsVisible(True)
        state = self._state()
        now = self._clock()
        watched = {r.spec.key for r in state.rules}

        self._info(menu, f"{state.title}: {summary_line(state.summary)}")
        for note in state.notes:
            # Wrapped, not cut: the end of a config error says what is wrong.
            for line in textwrap.wrap(
                note, MENU_LINE, break_long_words=False, break_on_hyphens=False
            ):
                action = menu.addAction(line)
                action.setEnabled(False)
        menu.addSeparator()

        for snap in state.snapshots:
            title = f"{snap.name} — {host_status(snap, state.thresholds_for, now)}"
            if mark := health_mark(snap.health):
                title += f" · {mark}"  # RAM or a disk over 90 %: a GPU there may be useless
            sub = self._submenu(menu, title)
            sub.setIcon(_dot(host_colour(snap, state.thresholds_for)))
            sub.aboutToShow.connect(lambda sub=sub, name=snap.name: self._fill_host(sub, name))
            if snap.state not in (HostState.OK, HostState.CONNECTING) and snap.message:
                self._info(menu, f"    {snap.message}")
        if state.snapshots:
            menu.addSeparator()

        self._add_watch_menu(menu, state, watched)
        refresh = menu.addAction("Refresh now")
        refresh.setObjectName("refresh")
        refresh.triggered.connect(lambda: self.actions.refresh_now())
        pause = menu.addAction("Pause polling")
        pause.setObjectName("pause")
        pause.setCheckable(True)
        pause.setChecked(state.paused)
        pause.triggered.connect(lambda checked: self.actions.set_paused(checked))
        menu.addSeparator()

        history = menu.addAction("History…")
        history.setObjectName("history")
        history.setEnabled(self.on_history is not None)
        history.triggered.connect(lambda: self.on_history and self.on_history())
        settings = menu.addAction("Settings…")
        settings.setObjectName("settings")
        settings.setEnabled(self.on_settings is not None)
        settings.triggered.connect(lambda: self.on_settings and self.on_settings())
        autostart = menu.addAction("Start at login")
        autostart.setObjectName("autostart")
        autostart.setCheckable(True)
        autostart.setChecked(bool(state.autostart))
        autostart.setEnabled(state.autostart is not None)
        autostart.triggered.connect(lambda checked: self.actions.set_autostart(checked))
        if state.can_reload:
            reload = menu.addAction("Reload configuration")
            reload.setObjectName("reload")
            reload.triggered.connect(lambda: self.actions.reload_config())
        menu.addSeparator()
        quit_ = menu.addAction("Quit")
        quit_.setObjectName("quit")
        quit_.triggered.connect(lambda: self.actions.quit())

    def _toggle(self, menu: QMenu, text: str, spec: WatchSpec, watched: set[str]) -> QAction:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(spec.key in watched)
        action.setData(spec.key)
        action.triggered.connect(
            lambda checked, spec=spec: (
                self.actions.add_watch(spec) if checked else self.actions.remove_watch(spec.key)
            )
        )
        return action

    def _fill_host(self, sub: QMenu, name: str) -> None:
        sub.clear()
        state = self._state()
        snap = next((s for s in state.snapshots if s.name == name), None)
        if snap is None:
            self._info(sub, "No longer polled")
            return
        watched = {r.spec.key for r in state.rules}
        now = self._clock()
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
            line = gpu_line(gpu, free, len(mine), notes.get(gpu.index))
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
                text = describe(rule.spec)
                if rule.holding_hosts:
                    text += " — free now"
                if rule.snoozed_until:
                    until = datetime.fromtimestamp(rule.snoozed_until).strftime("%H:%M")
                    text += f" — snoozed until {until}"
                action = sub.addAction(elide(text))
                action.setCheckable(True)
                action.setChecked(True)
                action.setData(rule.spec.key)
                action.triggered.connect(
                    lambda _checked, key=rule.spec.key: self.actions.remove_watch(key)
                )
            sub.addSeparator()
            snoozed = [r.snoozed_until for r in state.rules if r.snoozed_until]
            if snoozed:
                until = datetime.fromtimestamp(max(snoozed)).strftime("%H:%M")
                resume = sub.addAction(f"Resume notifications (snoozed until {until})")
                resume.triggered.connect(lambda: self.actions.unsnooze_all())
            else:
                snooze = sub.addAction("Snooze notifications for 1 h")
                snooze.triggered.connect(lambda: self.actions.snooze_all(SNOOZE_S))
