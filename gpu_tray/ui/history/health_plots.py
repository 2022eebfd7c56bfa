"""A host's health under its GPU plots: load (with the CPU count dashed) and how full its
RAM and each disk are, in per cent, with the 90 % line the tray marks hosts at.

Data lives in numpy buffers like the GPU lines: a range load replaces them, a live
snapshot appends one point. NaN is a gap.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from gpu_tray.core.models import HEALTH_LIMIT_PCT, HostHealth
from gpu_tray.store.reader import DiskSeries, HealthSeries

HEALTH_PLOTS = ("load", "usage")
TITLES = {"load": "Load (CPUs dashed)", "usage": "RAM and disks used (%)"}
LOAD_COLOUR = "#6a1b9a"
CPUS_COLOUR = "#9e9e9e"
RAM_COLOUR = "#ef6c00"
LIMIT_COLOUR = "#c62828"
# Disks, in order of their paths ("/" first).
DISK_COLOURS = ("#1565c0", "#2e7d32", "#00838f", "#8d6e63", "#5e35b1", "#ad1457")


def _arr(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


class Series:
    """Time, mean and max of one line (raw polls: mean == max)."""

    def __init__(self) -> None:
        self.t = np.empty(0)
        self.mean = np.empty(0)
        self.max = np.empty(0)

    def load(self, t: list[float], mean: list[float], top: list[float]) -> None:
        self.t, self.mean, self.max = _arr(t), _arr(mean), _arr(top)

    def append(self, t: float, value: float) -> None:
        self.t = np.append(self.t, t)
        self.mean = np.append(self.mean, value)
        self.max = np.append(self.max, value)

    def trim(self, t_min: float) -> None:
        i = int(np.searchsorted(self.t, t_min))
        if i > 0:
            self.t, self.mean, self.max = self.t[i:], self.mean[i:], self.max[i:]


class HealthBuffer:
    """Load, CPU count, RAM % and each disk's % of one host."""

    def __init__(self) -> None:
        self.load = Series()
        self.cpus = Series()
        self.ram = Series()
        self.disks: dict[str, Series] = {}

    def set_range(self, health: HealthSeries, disks: list[DiskSeries]) -> None:
        self.load.load(health.t, health.load_mean, health.load_max)
        self.cpus.load(health.t, health.cpus, health.cpus)
        self.ram.load(health.t, health.mem_pct_mean, health.mem_pct_max)
        self.disks = {}
        for d in disks:
            s = self.disks[d.path] = Series()
            s.load(d.t, d.pct_mean, d.pct_max)

    def append(self, t: float, h: HostHealth | None) -> None:
        """A live poll; None (the host did not answer): a gap in every line."""
        if h is None:
            for s in self.lines():
                s.append(t, math.nan)
            self.cpus.append(t, math.nan)
            return
        self.load.append(t, _nan(h.load1))
        self.cpus.append(t, _nan(h.cpus))
        self.ram.append(t, _nan(h.mem_pct))
        for d in h.disks:
            if d.path not in self.disks:
                self.disks[d.path] = Series()
                self.disks = dict(sorted(self.disks.items(), key=lambda i: (i[0] != "/", i[0])))
            self.disks[d.path].append(t, _nan(d.used_pct))

    def lines(self) -> list[Series]:
        return [self.load, self.ram, *self.disks.values()]

    def trim(self, t_min: float) -> None:
        for s in (*self.lines(), self.cpus):
            s.trim(t_min)

    @property
    def empty(self) -> bool:
        return not self.load.t.size and not self.disks


def disk_colour(i: int) -> str:
    return DISK_COLOURS[i % len(DISK_COLOURS)]


class HealthCurves:
    """The curves of the two health plots, kept in step with a HealthBuffer."""

    def __init__(self, load: pg.PlotItem, usage: pg.PlotItem) -> None:
        self.load_plot, self.usage_plot = load, usage
        self.load = load.plot(pen=pg.mkPen(LOAD_COLOUR, width=1.5))
        self.cpus = load.plot(pen=pg.mkPen(CPUS_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        self.ram = usage.plot(pen=pg.mkPen(RAM_COLOUR, width=1.5))
        limit = pg.InfiniteLine(
            pos=HEALTH_LIMIT_PCT,
            angle=0,
            pen=pg.mkPen(LIMIT_COLOUR, width=1, style=Qt.PenStyle.DotLine),
        )
        usage.addItem(limit, ignoreBounds=True)
        usage.setYRange(0, 100, padding=0.02)
        self.disks: dict[str, pg.PlotDataItem] = {}

    def redraw(self, buf: HealthBuffer) -> None:
        self.load.setData(buf.load.t, buf.load.mean, connect="finite")
        self.cpus.setData(buf.cpus.t, buf.cpus.mean, connect="finite")
        self.ram.setData(buf.ram.t, buf.ram.mean, connect="finite")
        for i, (path, s) in enumerate(buf.disks.items()):
            curve = self.disks.get(path)
            if curve is None:
                pen = pg.mkPen(disk_colour(i), width=1.5)
                curve = self.disks[path] = self.usage_plot.plot(pen=pen)
            curve.setData(s.t, s.mean, connect="finite")
        tops = [np.nanmax(a) for a in (buf.load.max, buf.cpus.mean) if np.isfinite(a).any()]
        self.load_plot.setYRange(0, max(1.0, *tops) if tops else 1.0, padding=0.05)

    @staticmethod
    def legend(buf: HealthBuffer) -> str:
        """HTML: what each colour of the health plots is."""
        entries = [
            f"<span style='color:{LOAD_COLOUR}'>━</span>&nbsp;load",
            f"<span style='color:{CPUS_COLOUR}'>┅</span>&nbsp;CPUs",
            f"<span style='color:{RAM_COLOUR}'>━</span>&nbsp;RAM",
        ]
        for i, path in enumerate(buf.disks):
            entries.append(
                f"<span style='color:{disk_colour(i)}'>━</span>&nbsp;{html.escape(path)}"
            )
        return " &nbsp;&nbsp; ".join(entries)
