"""What the history reader returns: plain series of floats per unit, per host and for
the cluster, NaN where a value is unknown or at a gap, plus the heatmap and the
live points a following window appends."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpu_tray.core.models import HostHealth
from gpu_tray.store.tiers import (
    QueryPlan,
)

NAN = math.nan
OK = "ok"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class UnitInfo:
    id: int
    host: str
    gpu_index: int
    mig_index: int | None
    uuid: str
    model: str
    profile: str | None
    memory_total_mib: int | None

    @property
    def key(self) -> tuple[int, int]:
        """Sort order and colour identity: (GPU index, MIG index or -1)."""
        return (self.gpu_index, -1 if self.mig_index is None else self.mig_index)

    @property
    def label(self) -> str:
        if self.mig_index is None:
            return f"GPU {self.gpu_index}"
        profile = f" ({self.profile})" if self.profile else ""
        return f"GPU {self.gpu_index} MIG {self.mig_index}{profile}"


@dataclass(slots=True)
class UnitSeries:
    unit: UnitInfo
    t: list[float] = field(default_factory=list)
    util_mean: list[float] = field(default_factory=list)
    util_max: list[float] = field(default_factory=list)
    mem_mean: list[float] = field(default_factory=list)
    mem_max: list[float] = field(default_factory=list)
    temp_mean: list[float] = field(default_factory=list)
    temp_max: list[float] = field(default_factory=list)

    COLUMNS = ("util_mean", "util_max", "mem_mean", "mem_max", "temp_mean", "temp_max")


@dataclass(slots=True)
class FreeSeries:
    t: list[float] = field(default_factory=list)
    free_mean: list[float] = field(default_factory=list)
    free_max: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)

    COLUMNS = ("free_mean", "free_max", "total")


@dataclass(slots=True)
class HealthSeries:
    """A host's load and RAM use (per cent) over time; NaN where unknown or at gaps."""

    t: list[float] = field(default_factory=list)
    load_mean: list[float] = field(default_factory=list)
    load_max: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    mem_pct_mean: list[float] = field(default_factory=list)
    mem_pct_max: list[float] = field(default_factory=list)

    COLUMNS = ("load_mean", "load_max", "cpus", "mem_pct_mean", "mem_pct_max")


@dataclass(slots=True)
class DiskSeries:
    """One disk path of a host: per cent used as df prints it, and its size."""

    path: str
    t: list[float] = field(default_factory=list)
    pct_mean: list[float] = field(default_factory=list)
    pct_max: list[float] = field(default_factory=list)
    total_mib: list[float] = field(default_factory=list)

    COLUMNS = ("pct_mean", "pct_max", "total_mib")


@dataclass(frozen=True, slots=True)
class StateChange:
    ts: int
    state: str
    message: str | None

    @property
    def ok(self) -> bool:
        return self.state == OK


@dataclass(slots=True)
class HostHistory:
    host: str
    units: list[UnitSeries]
    free: FreeSeries
    # Changes inside the range, preceded by the one in force at its start (if any).
    states: list[StateChange]
    # Typical seconds between points: longer silences are drawn as gaps.
    gap_s: float
    # Every whole GPU the host has reported (even with no series asked for).
    gpus: list[UnitInfo] = field(default_factory=list)
    # Load, RAM and disks: read with the per-unit series (`units` of load_range).
    health: HealthSeries = field(default_factory=HealthSeries)
    disks: list[DiskSeries] = field(default_factory=list)


@dataclass(slots=True)
class RangeData:
    t0: float
    t1: float
    plan: QueryPlan
    hosts: dict[str, HostHistory]
    cluster: FreeSeries


@dataclass(slots=True)
class Heatmap:
    """Hour of day x weekday (local time): the share of polls with at least one free unit.

    `fraction[d][h]` is None where there is no data; d = 0 is Monday.
    """

    host: str
    t0: float
    t1: float
    fraction: list[list[float | None]]
    polls: list[list[int]]


@dataclass(slots=True)
class LivePoint:
    host: str
    ts: int
    free: int
    total: int
    # unit id -> (util, mem, temp), None where unknown
    values: dict[int, tuple[int | None, int | None, int | None]]
    # The host's load, RAM and disks at that poll, when stored.
    health: HostHealth | None = None


@dataclass(slots=True)
class LiveUpdate:
    units: dict[int, UnitInfo]
    points: list[LivePoint]
    states: list[tuple[str, StateChange]]
    newest: int | None
