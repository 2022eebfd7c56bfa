"""The pieces a history section is built from: the metrics and sizes, growing buffers
of a unit's and a host's series, time plots that share an x axis, the crosshair
readout, and the sparkline in a collapsed section's header."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QWidget,
)

from gpu_tray.store.reader import (
    FreeSeries,
    UnitInfo,
    UnitSeries,
)
from gpu_tray.ui.history.colors import (
    FREE_COLOUR,
    TOTAL_COLOUR,
    unit_colour,
)
from gpu_tray.ui.history.health_plots import (
    HEALTH_PLOTS,
)

UnitKey = tuple[int, int]  # (GPU index, MIG index or -1)
PLOT_HEIGHT = 170
LEFT_AXIS_WIDTH = 44
HEATMAP_WIDTH = 330
PEN_WIDTH = 1.5


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    title: str
    unit: str
    scale: float = 1.0
    digits: int = 0


METRICS = (
    Metric("util", "Utilisation", "%"),
    Metric("mem", "Memory used", "GiB", 1 / 1024, 1),
    Metric("temp", "Temperature", "°C"),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
PLOT_NAMES = ("util", "mem", "temp", "free", *HEALTH_PLOTS)
ROWS = 3  # util | mem, temp | free, load | RAM and disks


def theme() -> tuple[QColor, QColor]:
    """Background and foreground from the desktop palette, so dark themes stay readable."""
    pal = QApplication.palette()
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def format_time(t: float, bucket_s: int | None) -> str:
    fmt = "%a %d %b %H:%M:%S" if bucket_s is None or bucket_s < 60 else "%a %d %b %H:%M"
    return time.strftime(fmt, time.localtime(t))


def _nan(v: object) -> float:
    return math.nan if v is None else float(v)  # type: ignore[arg-type]


def _append(arr: np.ndarray, value: float) -> np.ndarray:
    return np.append(arr, np.float64(value))


class UnitBuffer:
    """One unit's points: time, and mean/max of each metric (raw polls: mean == max)."""

    FIELDS = ("util", "util_max", "mem", "mem_max", "temp", "temp_max")

    def __init__(self, key: UnitKey, label: str, model: str, memory_total_mib: int | None) -> None:
        self.key = key
        self.label = label
        self.model = model
        self.memory_total_mib = memory_total_mib
        self.colour = unit_colour(key[0], None if key[1] < 0 else key[1])
        self.is_mig = key[1] >= 0
        self.t = np.empty(0)
        self.v = {f: np.empty(0) for f in self.FIELDS}

    @classmethod
    def from_info(cls, unit: UnitInfo) -> UnitBuffer:
        return cls(unit.key, unit.label, unit.model, unit.memory_total_mib)

    def load(self, s: UnitSeries) -> None:
        self.t = np.asarray(s.t, dtype=float)
        for f, col in zip(self.FIELDS, UnitSeries.COLUMNS, strict=True):
            self.v[f] = np.asarray(getattr(s, col), dtype=float)

    def append(self, t: float, util: object, mem: object, temp: object) -> None:
        self.t = _append(self.t, t)
        for f, value in (("util", util), ("mem", mem), ("temp", temp)):
            x = _nan(value)
            self.v[f] = _append(self.v[f], x)
            self.v[f + "_max"] = _append(self.v[f + "_max"], x)

    def clear(self) -> None:
        self.t = np.empty(0)
        self.v = {f: np.empty(0) for f in self.FIELDS}

    def trim(self, t_min: float) -> None:
        i = int(np.searchsorted(self.t, t_min))
        if i > 0:
            self.t = self.t[i:]
            for f in self.FIELDS:
                self.v[f] = self.v[f][i:]


class FreeBuffer:
    def __init__(self) -> None:
        self.t = np.empty(0)
        self.free = np.empty(0)
        self.free_max = np.empty(0)
        self.total = np.empty(0)

    def load(self, s: FreeSeries) -> None:
        self.t = np.asarray(s.t, dtype=float)
        self.free = np.asarray(s.free_mean, dtype=float)
        self.free_max = np.asarray(s.free_max, dtype=float)
        self.total = np.asarray(s.total, dtype=float)

    def append(self, t: float, free: float, total: float) -> None:
        self.t = _append(self.t, t)
        self.free = _append(self.free, free)
        self.free_max = _append(self.free_max, free)
        self.total = _append(self.total, total)

    def trim(self, t_min: float) -> None:
        i = int(np.searchsorted(self.t, t_min))
        if i > 0:
            self.t, self.free = self.t[i:], self.free[i:]
            self.free_max, self.total = self.free_max[i:], self.total[i:]

    def last(self) -> tuple[float, float] | None:
        """The newest known (free, total)."""
        for i in range(self.t.size - 1, -1, -1):
            if not math.isnan(self.free[i]):
                return float(self.free[i]), float(self.total[i])
        return None


def value_at(t: np.ndarray, y: np.ndarray, x: float, gap_s: float) -> tuple[int, float] | None:
    """The point at or just before x, if it is recent enough to still hold at x."""
    i = int(np.searchsorted(t, x, side="right")) - 1
    if i < 0 or x - t[i] > gap_s or math.isnan(y[i]):
        return None
    return i, float(y[i])


class TimeViewBox(pg.ViewBox):
    """Linked time axes show the same time range, whatever their size and place.

    pyqtgraph lines up linked views pixel by pixel when they overlap on screen,
    which suits plots stacked in one column, not plots side by side under a
    wider one."""

    def linkedViewChanged(self, view: pg.ViewBox, axis: int) -> None:
        if axis != pg.ViewBox.XAxis:
            super().linkedViewChanged(view, axis)
            return
        if self.linksBlocked or view is None:
            return
        lo, hi = view.viewRange()[0]
        view.blockLink(True)
        try:
            self.enableAutoRange(pg.ViewBox.XAxis, False)
            self.setXRange(lo, hi, padding=0)
        finally:
            view.blockLink(False)


def new_time_plot(title: str, master: pg.PlotItem | None, fg: QColor) -> pg.PlotItem:
    p = pg.PlotItem(
        viewBox=TimeViewBox(), axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}
    )
    p.setTitle(title, size="9pt", color=fg)
    p.showGrid(x=True, y=True, alpha=0.15)
    p.setDownsampling(auto=True, mode="peak")
    p.setClipToView(True)
    p.setMouseEnabled(x=True, y=False)
    p.hideButtons()
    p.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
    for name in ("left", "bottom"):
        p.getAxis(name).setPen(fg)
        p.getAxis(name).setTextPen(fg)
    if master is not None:
        p.setXLink(master)
    return p


def crosshair(plot: pg.PlotItem, fg: QColor) -> pg.InfiniteLine:
    line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(fg, style=Qt.PenStyle.DashLine))
    plot.addItem(line, ignoreBounds=True)
    line.hide()
    return line


class Sparkline(QWidget):
    """Free GPUs over the range, small enough for a header: a glance before expanding."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedSize(QSize(180, 22))
        self.t = np.empty(0)
        self.free = np.empty(0)
        self.total = np.empty(0)
        self.x_range = (0.0, 1.0)
        self._path: QPainterPath | None = None

    def set_data(self, free: FreeBuffer, x_range: tuple[float, float]) -> None:
        self.t, self.free, self.total = free.t, free.free, free.total
        self.x_range = x_range
        self._path: QPainterPath | None = None
        self.update()

    def _make_path(self) -> QPainterPath:
        path = QPainterPath()
        w, h = self.width(), self.height()
        lo, hi = self.x_range
        top = float(np.nanmax(self.total)) if np.isfinite(self.total).any() else 0.0
        if not self.t.size or hi <= lo or top <= 0:
            return path
        xs = ((self.t - lo) / (hi - lo) * (w - 2) + 1).tolist()
        ys = (h - 2 - self.free / top * (h - 4)).tolist()
        pen_down = False
        for x, y in zip(xs, ys, strict=True):
            if math.isnan(y) or x < 0:
                pen_down = False
            elif pen_down:
                path.lineTo(x, y)
            else:
                path.moveTo(x, y)
                pen_down = True
        return path

    def paintEvent(self, _event: object) -> None:
        if self._path is None:
            self._path = self._make_path()
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(FREE_COLOUR), 1.5))
        p.drawPath(self._path)
        p.setPen(QColor(TOTAL_COLOUR))
        p.drawLine(0, self.height() - 1, self.width(), self.height() - 1)
        p.end()
