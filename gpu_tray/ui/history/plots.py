"""The sections of the history window: one per host, and one for the whole cluster.

A host section is a header (always there, cheap) and a body of pyqtgraph plots
that is built only when the section first scrolls into view, so a window over
a hundred hosts opens as fast as one over two. Every plot's x axis is linked
to the cluster plot, so all of them pan and zoom together.

Data lives in small numpy buffers per GPU; a range load replaces them, a live
snapshot appends to them. NaN is a gap (a host that was down, an app that was
not running): pyqtgraph draws it as a break in the line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.models import HostHealth
from gpu_tray.store.reader import (
    DiskSeries,
    FreeSeries,
    HealthSeries,
    Heatmap,
    StateChange,
    UnitInfo,
    UnitSeries,
)
from gpu_tray.store.tiers import QueryPlan
from gpu_tray.ui.history.colors import (
    FREE_COLOUR,
    IDLE_ALPHA,
    IDLE_COLOUR,
    TOTAL_COLOUR,
)
from gpu_tray.ui.history.health_plots import (
    HEALTH_PLOTS,
    TITLES,
    HealthBuffer,
    HealthCurves,
    Series,
    disk_colour,
)
from gpu_tray.ui.history.heatmap import HeatmapWidget
from gpu_tray.ui.history.plot_parts import (
    HEATMAP_WIDTH,
    METRIC_BY_KEY,
    METRICS,
    PEN_WIDTH,
    PLOT_HEIGHT,
    PLOT_NAMES,
    ROWS,
    FreeBuffer,
    Sparkline,
    UnitBuffer,
    UnitKey,
    crosshair,
    format_time,
    new_time_plot,
    theme,
    value_at,
)


class _Header(QWidget):
    toggled = Signal(bool)

    def __init__(self, title: str, expanded: bool = True) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        self.arrow = QToolButton()
        self.arrow.setCheckable(True)
        self.arrow.setChecked(expanded)
        self.arrow.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.arrow.setToolTip("Show or hide the plots")
        self.arrow.setAutoRaise(True)
        self.arrow.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.arrow.setText(title)
        font = self.arrow.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.arrow.setFont(font)
        self.arrow.toggled.connect(self._toggled)
        self.arrow.setMinimumWidth(150)  # sparklines line up under each other
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.spark = Sparkline()
        self.spark.setToolTip("Free GPUs over the range shown")
        lay.addWidget(self.arrow)
        lay.addWidget(self.spark)
        lay.addWidget(self.summary, 1)
        self.buttons = QHBoxLayout()
        lay.addLayout(self.buttons)

    def _toggled(self, on: bool) -> None:
        self.arrow.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.toggled.emit(on)

    def add_button(self, text: str, tip: str, slot: Callable[[], None]) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        self.buttons.addWidget(b)
        return b


class Section(QFrame):
    """A collapsible section: a header, and a body built on first sight."""

    def __init__(self, title: str, expanded: bool = True) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(0)
        self.header = _Header(title, expanded)
        self.header.toggled.connect(self.set_expanded)
        lay.addWidget(self.header)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        self.body.setVisible(expanded)
        lay.addWidget(self.body)
        self.built = False
        self.plan: QueryPlan | None = None

    @property
    def expanded(self) -> bool:
        return self.header.arrow.isChecked()

    def set_expanded(self, on: bool) -> None:
        if self.header.arrow.isChecked() != on:
            self.header.arrow.setChecked(on)  # comes back here through toggled
            return
        self.body.setVisible(on)

    def needs_building(self) -> bool:
        return not self.built and self.expanded and not self.isHidden()

    def build(self) -> None:
        raise NotImplementedError


class HostSection(Section):
    """One host: utilisation, memory and temperature per GPU, free GPUs, the host's load,
    RAM and disks, and the heatmap."""

    def __init__(self, host: str, master: pg.PlotItem, expanded: bool = True) -> None:
        super().__init__(host, expanded)
        self.host = host
        self.master = master
        self.units: dict[UnitKey, UnitBuffer] = {}
        self.free = FreeBuffer()
        self.health = HealthBuffer()
        self.health_curves: HealthCurves | None = None
        self.states: list[StateChange] = []
        self.gap_s = 60.0
        self.heatmap: Heatmap | None = None
        self.live_points = 0
        self.gpus: list[tuple[str, int | None]] = []  # (model, memory) of each whole GPU
        self.units_generation = -1  # which range load the per-GPU lines came from
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, UnitKey], pg.PlotDataItem] = {}
        self.lines: list[pg.InfiniteLine] = []
        self.heat: HeatmapWidget | None = None
        self.glw: pg.GraphicsLayoutWidget | None = None
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setContentsMargins(8, 2, 8, 0)
        self._legend_keys: tuple[UnitKey, ...] = ()
        self._legend_gpus = ""
        self._legend_health: str | None = None
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setContentsMargins(8, 0, 8, 4)
        # Until built, the body keeps the room the plots will take, so scrolling is stable.
        self.body.setMinimumHeight(self._body_height())
        self._hint = "Hover over a plot for the time and each GPU's value."
        # Held-idle stretches (unit, start, end), shaded on the utilisation plot.
        self.idle: list[tuple[UnitKey, float, float]] = []
        self._idle_items: list[pg.LinearRegionItem] = []

    # --- data ---------------------------------------------------------------------

    def set_overview(
        self,
        free: FreeSeries,
        states: list[StateChange],
        gap_s: float,
        plan: QueryPlan,
        gpus: Iterable[UnitInfo] = (),
    ) -> None:
        """Free counts and state changes of a range (the per-GPU lines come separately)."""
        self.plan = plan
        self.gpus = [(g.model, g.memory_total_mib) for g in gpus] or self.gpus
        self.gap_s = gap_s
        self.states = list(states)
        self.free.load(free)
        self.live_points = 0
        self._update_summary()
        if self.built:
            self.redraw()

    def set_units(self, units: Iterable[UnitSeries], plan: QueryPlan) -> None:
        """The per-GPU lines of a range."""
        self.plan = plan
        keep: dict[UnitKey, UnitBuffer] = {}
        for s in units:
            buf = self.units.get(s.unit.key) or UnitBuffer.from_info(s.unit)
            buf.label, buf.model = s.unit.label, s.unit.model
            buf.memory_total_mib = s.unit.memory_total_mib
            buf.load(s)
            keep[s.unit.key] = buf
        for key, buf in self.units.items():  # seen live, but not in this range
            if key not in keep:
                buf.clear()
                keep[key] = buf
        self.units = dict(sorted(keep.items()))
        self._update_summary()
        if self.built:
            self._sync_curves()
            self.redraw()

    def set_health(self, health: HealthSeries, disks: list[DiskSeries]) -> None:
        """Load, RAM and disks of a range (they come with the per-GPU lines)."""
        self.health.set_range(health, disks)
        if self.built:
            self.redraw()

    def append_health(self, t: float, health: HostHealth | None) -> None:
        """A live poll's health (None: unknown, drawn as a gap); drawn with the next redraw."""
        self.health.append(t, health)

    def append(
        self,
        t: float,
        values: dict[UnitKey, tuple[object, object, object]],
        info: dict[UnitKey, tuple[str, str, int | None]],
        free: int,
        total: int,
        t_min: float,
    ) -> None:
        """A live poll: values per unit key; info gives (label, model, memory) for new units."""
        for key, vals in values.items():
            buf = self.units.get(key)
            if buf is None:
                label, model, mem = info[key]
                buf = self.units[key] = UnitBuffer(key, label, model, mem)
                self.units = dict(sorted(self.units.items()))
            buf.append(t, *vals)
        self.free.append(t, free, total)
        self._trim(t_min)
        self.live_points += 1
        self._update_summary()
        if self.built:
            self._sync_curves()
            self.redraw()

    def append_down(self, t: float, state: StateChange, t_min: float) -> None:
        """The host stopped answering: a gap in every line, and say so in the header."""
        if self.states and self.states[-1].state == state.state:
            return
        self.states.append(state)
        for buf in self.units.values():
            buf.append(t, None, None, None)
        self.free.append(t, math.nan, math.nan)
        self._trim(t_min)
        self._update_summary()
        if self.built:
            self.redraw()

    def mark_up(self, state: StateChange) -> None:
        if not self.states or self.states[-1].state != state.state:
            self.states.append(state)

    def _trim(self, t_min: float) -> None:
        for buf in self.units.values():
            buf.trim(t_min)
        self.free.trim(t_min)
        self.health.trim(t_min)

    def set_heatmap(self, heatmap: Heatmap | None) -> None:
        self.heatmap = heatmap
        if self.heat is not None:
            self.heat.set_heatmap(heatmap)

    # --- header -------------------------------------------------------------------

    def _update_summary(self) -> None:
        lo, hi = self.master.getViewBox().viewRange()[0]
        self.header.spark.set_data(self.free, (float(lo), float(hi)))
        parts = []
        gpus = self.gpus or [
            (b.model, b.memory_total_mib) for b in self.units.values() if not b.is_mig
        ]
        models = {m for m, _ in gpus if m}
        n = len(gpus)
        if n:
            parts.append(f"{n} × {models.pop()}" if len(models) == 1 else f"{n} GPUs")
        last = self.states[-1] if self.states else None
        now = self.free.last()
        if last is not None and not last.ok:
            msg = last.message or last.state
            parts.append(
                f"<span style='color:#c62828'>down since "
                f"{format_time(last.ts, 60)}: {_html(msg)}</span>"
            )
        elif now is not None:
            free, total = now
            colour = FREE_COLOUR if free >= 1 else "#c62828"
            parts.append(
                f"<span style='color:{colour}'><b>{free:g}</b> of {total:g} free</span> "
                f"at the last poll"
            )
        self.header.summary.setText(" · ".join(parts))

    # --- plots --------------------------------------------------------------------

    def _body_height(self) -> int:
        return ROWS * PLOT_HEIGHT + 56

    def build(self) -> None:
        if self.built:
            return
        bg, fg = theme()
        glw = pg.GraphicsLayoutWidget()
        glw.setBackground(bg)
        glw.setFixedHeight(ROWS * PLOT_HEIGHT)
        glw.ci.layout.setContentsMargins(2, 2, 2, 2)
        titles = {m.key: f"{m.title} ({m.unit})" for m in METRICS}
        titles["free"] = "Free GPUs"
        titles.update(TITLES)
        for i, name in enumerate(PLOT_NAMES):
            p = new_time_plot(titles[name], self.master, fg)
            if i < len(PLOT_NAMES) - 2:  # the same times are written under the plots below
                p.getAxis("bottom").setStyle(showValues=False)
                p.getAxis("bottom").setHeight(6)
            glw.addItem(p, row=i // 2, col=i % 2)
            self.plots[name] = p
            self.lines.append(crosshair(p, fg))
        self.plots["util"].setYRange(0, 100, padding=0.02)
        free_pen = pg.mkPen(FREE_COLOUR, width=2)
        total_pen = pg.mkPen(TOTAL_COLOUR, width=1, style=Qt.PenStyle.DashLine)
        self.free_curve = self.plots["free"].plot(pen=free_pen)
        self.total_curve = self.plots["free"].plot(pen=total_pen)
        self.health_curves = HealthCurves(self.plots["load"], self.plots["usage"])
        self.heat = HeatmapWidget()
        self.heat.setFixedSize(HEATMAP_WIDTH, 2 * PLOT_HEIGHT)
        self.heat.set_heatmap(self.heatmap)
        self.heat.hovered.connect(lambda text: self.readout.setText(_html(text) or self._hint))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(glw, 1)
        row.addWidget(self.heat, 0, Qt.AlignmentFlag.AlignTop)
        self.glw = glw
        self.body_layout.addWidget(self.legend)
        self.body_layout.addLayout(row)
        self.body_layout.addWidget(self.readout)
        # Children added to a visible widget are shown only on the next event-loop turn,
        # and until then count for nothing in its size: a section would be laid out (and
        # saved as PNG) squeezed. Show them now.
        for w in (self.legend, glw, self.heat, self.readout):
            w.show()
        self.readout.setText(self._hint)
        self.body.setMinimumHeight(0)
        self._proxy = pg.SignalProxy(glw.scene().sigMouseMoved, rateLimit=30, slot=self._mouse)
        self.built = True
        self._sync_curves()
        self.redraw()
        self._draw_idle()

    def set_idle(self, stretches: list[tuple[UnitKey, float, float]]) -> None:
        """Shade each held-idle stretch on the utilisation plot, in its GPU's colour."""
        self.idle = list(stretches)
        if self.built:
            self._draw_idle()

    def _draw_idle(self) -> None:
        plot = self.plots["util"]
        for item in self._idle_items:
            plot.removeItem(item)
        self._idle_items = []
        for key, start, end in self.idle:
            buf = self.units.get(key)
            colour = QColor(buf.colour if buf is not None else IDLE_COLOUR)
            colour.setAlpha(IDLE_ALPHA)
            region = pg.LinearRegionItem(
                values=(start, end), movable=False, brush=pg.mkBrush(colour), pen=pg.mkPen(None)
            )
            region.setZValue(-100)
            region.setToolTip("Held idle: a process, and utilisation at or under [idle]")
            plot.addItem(region)
            self._idle_items.append(region)

    def _sync_curves(self) -> None:
        """A curve per unit and metric (MIG units have memory only), a legend entry per unit."""
        for key, buf in self.units.items():
            for m in METRICS:
                if (buf.is_mig and m.key != "mem") or (m.key, key) in self.curves:
                    continue
                curve = self.plots[m.key].plot(pen=pg.mkPen(buf.colour, width=PEN_WIDTH))
                curve.setZValue(-key[0])
                self.curves[(m.key, key)] = curve
        keys = tuple(self.units)
        if keys != self._legend_keys:
            self._legend_keys = keys
            entries = [
                f"<span style='color:{b.colour}'>■</span>&nbsp;{_html(b.label)}"
                for b in self.units.values()
            ]
            free = f"<span style='color:{FREE_COLOUR}'>━</span>&nbsp;free"
            total = f"<span style='color:{TOTAL_COLOUR}'>┅</span>&nbsp;units"
            self._legend_gpus = " &nbsp;&nbsp; ".join([*entries, free, total])
            self._legend_health = None  # redraw writes the legend
            mem_top = max((b.memory_total_mib or 0 for b in self.units.values()), default=0)
            if mem_top:
                self.plots["mem"].setYRange(0, mem_top / 1024, padding=0.02)

    def redraw(self) -> None:
        if not self.built:
            return
        for (metric, key), curve in self.curves.items():
            buf = self.units.get(key)
            if buf is None:
                continue
            scale = METRIC_BY_KEY[metric].scale
            y = buf.v[metric] * scale if scale != 1 else buf.v[metric]
            curve.setData(buf.t, y, connect="finite")
        self.free_curve.setData(self.free.t, self.free.free, connect="finite")
        self.total_curve.setData(self.free.t, self.free.total, connect="finite")
        top = np.nanmax(self.free.total) if np.isfinite(self.free.total).any() else 1
        self.plots["free"].setYRange(0, max(1.0, float(top)), padding=0.05)
        if self.health_curves is not None:
            self.health_curves.redraw(self.health)
            health = HealthCurves.legend(self.health) if not self.health.empty else ""
            if health != self._legend_health:
                self._legend_health = health
                parts = [p for p in (self._legend_gpus, health) if p]
                # The host's own lines on a line of their own: the GPU legend of a big
                # host already fills the window's width.
                self.legend.setText("<br>".join(parts))

    # --- hover --------------------------------------------------------------------

    def _mouse(self, event: tuple[QPointF]) -> None:
        pos = event[0]
        for name, plot in self.plots.items():
            if plot.sceneBoundingRect().contains(pos):
                x = plot.getViewBox().mapSceneToView(pos).x()
                for line in self.lines:
                    line.setPos(x)
                    line.show()
                self.readout.setText(self.describe(name, x))
                return
        for line in self.lines:
            line.hide()
        self.readout.setText(self._hint)

    def describe(self, plot: str, x: float) -> str:
        """The readout for the mouse at time x over a plot: the time and each value."""
        bucket = self.plan.bucket_s if self.plan else None
        when = f"<b>{format_time(x, bucket)}</b>"
        if bucket:
            when += f" ({self.plan.describe()})"  # type: ignore[union-attr]
        if plot in HEALTH_PLOTS:
            return f"{when} · " + self._describe_health(plot, x, bool(bucket))
        if plot == "free":
            hit = value_at(self.free.t, self.free.free, x, self.gap_s)
            if hit is None:
                return f"{when} · no data"
            i, free = hit
            top = self.free.free_max[i]
            extra = f", up to {top:g}" if bucket and top != free else ""
            return f"{when} · free GPUs: <b>{free:.3g}</b>{extra} of {self.free.total[i]:g}"
        m = METRIC_BY_KEY[plot]
        parts = []
        for key, buf in self.units.items():
            if (plot, key) not in self.curves:
                continue
            hit = value_at(buf.t, buf.v[plot], x, self.gap_s)
            swatch = f"<span style='color:{buf.colour}'>■</span> {_html(buf.label)}"
            if hit is None:
                parts.append(f"{swatch}: –")
                continue
            i, v = hit
            unit = m.unit if m.unit == "%" else f" {m.unit}"
            text = f"{v * m.scale:.{m.digits}f}{unit}"
            top = buf.v[plot + "_max"][i]
            if bucket and not math.isnan(top) and top != v:
                text += f" (max {top * m.scale:.{m.digits}f})"
            parts.append(f"{swatch}: {text}")
        return f"{when} · {m.title}: " + " &nbsp; ".join(parts)

    def _describe_health(self, plot: str, x: float, bucket: bool) -> str:
        gap = self._health_gap()

        def one(s: Series, fmt: str, unit: str = "") -> str:
            hit = value_at(s.t, s.mean, x, gap)
            if hit is None or math.isnan(hit[1]):
                return "–"
            i, v = hit
            text = f"{v:{fmt}}{unit}"
            top = s.max[i]
            if bucket and not math.isnan(top) and top != v:
                text += f" (max {top:{fmt}}{unit})"
            return text

        if plot == "load":
            load, cpus = one(self.health.load, ".2f"), one(self.health.cpus, ".0f")
            return f"load: <b>{load}</b> on {cpus} CPUs"
        parts = [f"RAM: <b>{one(self.health.ram, '.0f', '%')}</b>"]
        for i, (path, s) in enumerate(self.health.disks.items()):
            swatch = f"<span style='color:{disk_colour(i)}'>■</span> {_html(path)}"
            parts.append(f"{swatch}: <b>{one(s, '.0f', '%')}</b>")
        return " &nbsp; ".join(parts)

    def _health_gap(self) -> float:
        """As for the GPU lines: a few typical steps between the health points."""
        t = self.health.load.t
        step = float(np.median(np.diff(t))) if t.size > 2 else self.gap_s / 2.5
        return max(self.gap_s, 2.5 * step)


class ClusterSection(Section):
    """Free GPUs on all hosts together; its plot is the x-axis master of the window."""

    def __init__(self) -> None:
        super().__init__("All hosts")
        self.header.spark.hide()
        bg, fg = theme()
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(bg)
        self.glw.setFixedHeight(PLOT_HEIGHT + 30)
        self.plot = new_time_plot("Free GPUs on all hosts", None, fg)
        self.plot.enableAutoRange(axis="x", enable=False)
        self.glw.addItem(self.plot)
        self.line = crosshair(self.plot, fg)
        self.plot.addLegend(offset=(8, 4), labelTextColor=fg, labelTextSize="8pt", colCount=2)
        self.free_curve = self.plot.plot(pen=pg.mkPen(FREE_COLOUR, width=2), name="free")
        self.total_curve = self.plot.plot(
            pen=pg.mkPen(TOTAL_COLOUR, width=1, style=Qt.PenStyle.DashLine), name="units"
        )
        self.free = FreeBuffer()
        self.gap_s = 60.0
        self.readout = QLabel("Hover over the plot for the number of free GPUs.")
        self.readout.setContentsMargins(8, 0, 8, 4)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.body_layout.addWidget(self.glw)
        self.body_layout.addWidget(self.readout)
        self._proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._mouse)
        self.built = True

    def build(self) -> None:
        pass

    def set_series(self, free: FreeSeries, plan: QueryPlan, gap_s: float) -> None:
        self.plan = plan
        self.gap_s = gap_s
        self.free.load(free)
        self.redraw()

    def append(self, t: float, free: float, total: float, t_min: float) -> None:
        self.free.append(t, free, total)
        self.free.trim(t_min)
        self.redraw()

    def redraw(self) -> None:
        self.free_curve.setData(self.free.t, self.free.free, connect="finite")
        self.total_curve.setData(self.free.t, self.free.total, connect="finite")
        top = np.nanmax(self.free.total) if np.isfinite(self.free.total).any() else 1
        self.plot.setYRange(0, max(1.0, float(top)), padding=0.05)
        last = self.free.last()
        if last is None:
            self.header.summary.setText("no data in this range")
        else:
            free, total = last
            colour = FREE_COLOUR if free >= 1 else "#c62828"
            self.header.summary.setText(
                f"<span style='color:{colour}'><b>{free:g}</b> of {total:g} free</span> "
                "at the last poll"
            )

    def _mouse(self, event: tuple[QPointF]) -> None:
        pos = event[0]
        if not self.plot.sceneBoundingRect().contains(pos):
            self.line.hide()
            return
        x = self.plot.getViewBox().mapSceneToView(pos).x()
        self.line.setPos(x)
        self.line.show()
        bucket = self.plan.bucket_s if self.plan else None
        when = f"<b>{format_time(x, bucket)}</b>"
        hit = value_at(self.free.t, self.free.free, x, self.gap_s)
        if hit is None:
            self.readout.setText(f"{when} · no data")
        else:
            i, free = hit
            self.readout.setText(
                f"{when} · free GPUs on all hosts: <b>{free:.3g}</b> of {self.free.total[i]:g}"
            )


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
