"""What the tray shows (`TrayState`) and what its menu may ask of the app
(`TrayActions`). Qt-free, so the controller and its tests need no QApplication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gpu_tray.core.availability import ClusterSummary, ThresholdsFor
from gpu_tray.core.idle import UnitKey
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.people import Person
from gpu_tray.core.rules import RuleStatus
from gpu_tray.core.settings import FreeThresholds, WatchSpec


def _default_thresholds(_host: str) -> FreeThresholds:
    return FreeThresholds()


@dataclass(frozen=True)
class TrayState:
    """Everything the tray shows. Replaced whole on every update (GUI thread only)."""

    snapshots: tuple[HostSnapshot, ...] = ()
    summary: ClusterSummary = field(default_factory=lambda: ClusterSummary(0, 0, 0, 0, 0))
    thresholds_for: ThresholdsFor = _default_thresholds
    rules: tuple[RuleStatus, ...] = ()
    paused: bool = False
    #: None: this platform has no autostart we can manage.
    autostart: bool | None = None
    title: str = "gpu-tray"
    #: Lines shown at the top of the menu: first-run hint, config error, a failed save.
    notes: tuple[str, ...] = ()
    #: False for the demo without a config file: watches last for this run only.
    watches_saved: bool = True
    can_reload: bool = False
    #: Units held idle now -> since when (epoch seconds): core/idle.py.
    idle_since: Mapping[UnitKey, float] = field(default_factory=dict)
    #: The people view: core/people.py.
    people: tuple[Person, ...] = ()
    #: Host -> when history says a GPU is usually free there (core/prediction.py).
    usually_free_by: Mapping[str, datetime] = field(default_factory=dict)


class TrayActions(Protocol):
    """What the menu asks the app to do. Each returns at once; slow work goes to a worker."""

    def refresh_now(self) -> None: ...
    def set_paused(self, paused: bool) -> None: ...
    def add_watch(self, spec: WatchSpec) -> None: ...
    def remove_watch(self, key: str) -> None: ...
    def snooze_all(self, seconds: float) -> None: ...
    def unsnooze_all(self) -> None: ...
    def set_autostart(self, enabled: bool) -> None: ...
    def reload_config(self) -> None: ...
    def quit(self) -> None: ...
