"""History: a Qt-free SQLite store (stdlib sqlite3) with tiered retention.

Write with `HistoryWriter` (its own thread; `submit()` never blocks), read with
`HistoryReader` (any thread, its own connections). See schema.py and tiers.py.
"""

from gpu_tray.store.connection import StoreUnavailable, open_store
from gpu_tray.store.paths import history_path
from gpu_tray.store.reader import (
    DiskSeries,
    FreeSeries,
    HealthSeries,
    Heatmap,
    HistoryReader,
    HostHistory,
    RangeData,
    StateChange,
    UnitInfo,
    UnitSeries,
)
from gpu_tray.store.recorder import Recorder
from gpu_tray.store.tiers import DEFAULT_RETENTION, QueryPlan, Retention, plan_for
from gpu_tray.store.writer import HistoryWriter

__all__ = [
    "DEFAULT_RETENTION",
    "DiskSeries",
    "FreeSeries",
    "HealthSeries",
    "Heatmap",
    "HistoryReader",
    "HistoryWriter",
    "HostHistory",
    "QueryPlan",
    "RangeData",
    "Recorder",
    "Retention",
    "StateChange",
    "StoreUnavailable",
    "UnitInfo",
    "UnitSeries",
    "history_path",
    "open_store",
    "plan_for",
]
