"""The history window: every host as a collapsible section, searchable by name.

Opened from the tray ("History…") with `open_history_window(path)` and by
`gpu-tray history`. Import this module only when the window is wanted: it
pulls in pyqtgraph and numpy, which the tray's start-up should not pay for.

The GUI thread never touches the database: range loads, heatmaps, CSV files
and PNG writes run on the Loader's threads and come back as queued signals.
New polls are drawn as they come (`append_snapshot`), without reading the
range again; a window that follows a database written by another process
(`follow_db`) reads only the polls newer than what it has.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.availability import ThresholdsFor, host_units
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.na import or_none
from gpu_tray.core.settings import FreeThresholds, IdleSettings
from gpu_tray.store.holder_views import PeopleView, people_view
from gpu_tray.store.reader import (
    FreeSeries,
    Heatmap,
    HistoryReader,
    LiveUpdate,
    RangeData,
    StateChange,
)
from gpu_tray.store.tiers import DAY_S, DEFAULT_RETENTION, RAW, Retention
from gpu_tray.ui.history.loader import Loader
from gpu_tray.ui.history.people_tab import PeopleTab
from gpu_tray.ui.history.plots import (
    PLOT_NAMES,
    ClusterSection,
    HostSection,
    UnitKey,
)

log = logging.getLogger(__name__)

RANGES: dict[str, int] = {
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": DAY_S,
    "7d": 7 * DAY_S,
    "30d": 30 * DAY_S,
}
RANGE_LABELS = {"1h": "1 h", "6h": "6 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}
HEATMAP_S = 28 * DAY_S
HEATMAP_REFRESH_MS = 15 * 60 * 1000
HEATMAP_DELAY_MS = 300
FOLLOW_MS = 10_000
# After this many live polls on an aggregated range, read the range again: it keeps
# the number of points bounded when the window stays open for days.
LIVE_RELOAD_POINTS = 1500
BUILD_MARGIN_PX = 300
SHOW_WAIT_MS = 400


def _default_thresholds(_host: str) -> FreeThresholds:
    return FreeThresholds()


class HistoryWindow(QWidget):
    range_loaded = Signal(str)  # the range key, once its data is drawn
    heatmaps_loaded = Signal()
    people_loaded = Signal()
    exported = Signal(str)  # a path, once the file is written
    export_failed = Signal(str)  # a one-line message

    def __init__(
        self,
        store_path: Path | str,
        parent: QWidget | None = None,
        *,
        thresholds_for: ThresholdsFor | None = None,
        clock: Callable[[], float] = time.time,
        follow_db: bool = False,
        initial_range: str = "24h",
        retention: Retention = DEFAULT_RETENTION,
        idle: IdleSettings | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.idle_settings = idle or IdleSettings()
        self.people_view: PeopleView | None = None
        self.setWindowTitle("gpu-tray — history")
        self.store_path = Path(store_path)
        self.reader = HistoryReader(self.store_path, retention)
        self.thresholds_for = thresholds_for or _default_thresholds
        self.clock = clock
        self.loader = Loader(self)
        self.loader.finished.connect(self._loaded)
        self.loader.failed.connect(self._load_failed)
        self.sections: dict[str, HostSection] = {}
        self.heatmaps: dict[str, Heatmap] = {}
        self.range_key = initial_range
        self.span = RANGES[initial_range]
        self.data: RangeData | None = None
        self.following = True
        self._setting_x = False
        self._live: dict[str, tuple[int, int]] = {}
        self._newest: float | None = None
        self.generation = 0
        self._t0 = self._t1 = 0.0
        self._pending_units: set[str] = set()
        self._overview_key: str | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addLayout(self._toolbar())
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        container = QWidget()
        self.column = QVBoxLayout(container)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(6)
        self.cluster = ClusterSection()
        self.cluster.header.add_button(
            "PNG…", "Save this plot as a PNG image", self._ask_cluster_png
        )
        self.cluster.header.add_button(
            "CSV…", "Save the free-GPU counts of every host as CSV", self._ask_cluster_csv
        )
        self.column.addWidget(self.cluster)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()
        self.column.addWidget(self.empty)
        self.column.addStretch(1)
        self.scroll.setWidget(container)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.scroll, "GPUs")
        self.people_tab = PeopleTab()
        self.tabs.addTab(self.people_tab, "People")
        outer.addWidget(self.tabs, 1)
        self.master = self.cluster.plot
        self.master.getViewBox().sigXRangeChanged.connect(self._x_changed)
        self._add_menu_actions(self.master, None, "free")

        self._build_timer = QTimer(self, singleShot=True, interval=0)
        self._build_timer.timeout.connect(self._build_visible)
        self.scroll.verticalScrollBar().valueChanged.connect(self._build_timer.start)
        self._heat_timer = QTimer(self, interval=HEATMAP_REFRESH_MS)
        self._heat_timer.timeout.connect(self.load_heatmaps)
        self._follow_timer = QTimer(self, interval=FOLLOW_MS)
        self._follow_timer.timeout.connect(self._follow)
        self.follow_db = follow_db
        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus)
        size = QSize(1360, 900)
        if (screen := self.screen()) is not None:  # small laptop screens
            avail = screen.availableGeometry()
            size = size.boundedTo(QSize(int(avail.width() * 0.95), int(avail.height() * 0.9)))
        self.resize(size)
        self.set_range(initial_range)

    # --- layout -------------------------------------------------------------------

    def _toolbar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search hosts…")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(260)
        self.search.textChanged.connect(self.filter_hosts)
        bar.addWidget(self.search)
        bar.addSpacing(12)
        self.range_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        group.setExclusive(True)
        for key, label in RANGE_LABELS.items():
            b = QPushButton(label)
            b.setCheckable(True)
            b.setToolTip(f"Show the last {label}")
            b.clicked.connect(lambda _checked=False, k=key: self.set_range(k))
            group.addButton(b)
            bar.addWidget(b)
            self.range_buttons[key] = b
        bar.addSpacing(12)
        self.status = QLabel()
        bar.addWidget(self.status, 1)
        return bar

    # --- ranges -------------------------------------------------------------------

    def set_range(self, key: str) -> None:
        """Show the last 1 h / 6 h / 24 h / 7 d / 30 d: the axis moves at once, data follows."""
        self.range_key = key
        self.span = RANGES[key]
        self.range_buttons[key].setChecked(True)
        self.following = True
        now = self.clock()
        self._set_x(now - self.span, now)
        self.reload()

    def reload(self) -> None:
        """Read the current range again: first the overview (free counts, states, the
        cluster), then the per-GPU lines of the sections that are built."""
        now = self.clock()
        self.generation += 1
        self._t0, self._t1 = now - self.span, now + 1
        t0, t1, key = self._t0, self._t1, self.range_key
        self._pending_units.clear()
        self.status.setText(f"Loading the last {RANGE_LABELS[key]}…")
        # The lines of sections already open come with the overview, so the first frame
        # has them; on the first load that is the first host, which opens expanded.
        shown = [h for h, sec in self.sections.items() if sec.built and not sec.isHidden()]
        gen = self.generation
        for host in shown:
            self.sections[host].units_generation = gen

        known = set(self.heatmaps)

        def work() -> tuple[str, int, list[str], RangeData, dict[str, Heatmap]]:
            with_units = shown if self.sections else self.reader.hosts()[:1]
            data = self.reader.load_range(t0, t1, units=with_units)
            heat = {
                h: self.reader.heatmap(h, now - HEATMAP_S, now)
                for h in with_units
                if h not in known
            }
            return key, gen, with_units, data, heat

        self.loader.submit("overview", work)
        path, settings = self.store_path, self.idle_settings
        self.loader.submit("people", lambda: people_view(path, now, settings, since=t0))

    def _request_units(self, section: HostSection) -> None:
        if section.units_generation == self.generation:
            return
        section.units_generation = self.generation
        host, t0, t1, gen = section.host, self._t0, self._t1, self.generation
        self._pending_units.add(host)
        self.loader.submit(f"units:{host}", lambda: (gen, self.reader.load_range(t0, t1, [host])))

    def x_range(self) -> tuple[float, float]:
        lo, hi = self.master.getViewBox().viewRange()[0]
        return float(lo), float(hi)

    def _set_x(self, lo: float, hi: float) -> None:
        self._setting_x = True
        try:
            self.master.setXRange(lo, hi, padding=0)
        finally:
            self._setting_x = False

    def _x_changed(self, *_args: object) -> None:
        if not self._setting_x:
            self.following = False  # the user panned or zoomed: stop sliding with "now"
        self._build_timer.start()

    def _t_min(self) -> float:
        return self.clock() - self.span * 1.05

    # --- results from the loader ----------------------------------------------------

    def _loaded(self, kind: str, number: int, result: object) -> None:
        if kind == "overview" and self.loader.is_latest(kind, number):
            key, gen, with_units, data, heat = result  # type: ignore[misc]
            self.heatmaps.update(heat)
            self._apply_overview(key, gen, with_units, data)
        elif kind.startswith("units:") and self.loader.is_latest(kind, number):
            gen, data = result  # type: ignore[misc]
            self._apply_units(kind[len("units:") :], gen, data)
        elif kind == "heatmaps" and self.loader.is_latest(kind, number):
            self.heatmaps.update(result)  # type: ignore[arg-type]
            for host, hm in self.heatmaps.items():
                if host in self.sections:
                    self.sections[host].set_heatmap(hm)
            self.heatmaps_loaded.emit()
        elif kind == "people" and self.loader.is_latest(kind, number):
            self._apply_people(result)  # type: ignore[arg-type]
        elif kind == "tail":
            self._apply_tail(result)  # type: ignore[arg-type]
        elif kind == "export":
            self.status.setText(str(result))
            self.exported.emit(str(result).rsplit(" to ", 1)[-1])

    def _load_failed(self, kind: str, number: int, message: str) -> None:
        if kind.startswith("units:"):
            self._pending_units.discard(kind[len("units:") :])
        if kind == "export":
            self.status.setText(f"Could not save: {message}")
            self.export_failed.emit(message)
        elif kind != "tail":
            self.status.setText(f"Could not read the history: {message}")

    def _apply_overview(self, key: str, gen: int, with_units: list[str], data: RangeData) -> None:
        self.data = data
        for host in sorted(data.hosts):
            h = data.hosts[host]
            section = self._section(host)
            section.set_overview(h.free, h.states, h.gap_s, data.plan, h.gpus)
            if host in with_units:
                section.units_generation = gen
                section.set_units(h.units, data.plan)
                section.set_health(h.health, h.disks)
        for host, section in self.sections.items():
            if host not in data.hosts:
                section.set_overview(FreeSeries(), [], 60.0, data.plan)
        gap = max((h.gap_s for h in data.hosts.values()), default=60.0)
        self.cluster.set_series(data.cluster, data.plan, gap)
        self._seed_live(data)
        self._newest = max(self._newest or 0.0, data.t1 - 120)
        if self.following:
            now = self.clock()
            self._set_x(now - self.span, now)
        n = len(data.hosts)
        self.empty.setText("No history yet. It fills in as gpu-tray polls your hosts.")
        self.empty.setVisible(not self.sections)
        self.status.setText(
            f"Last {RANGE_LABELS[key]}: {data.plan.describe()} · {n} host{'s' if n != 1 else ''}"
        )
        self._overview_key = key
        self._build_visible()
        for section in self.sections.values():
            if section.built:
                self._request_units(section)
        self._maybe_done()

    def _apply_people(self, view: PeopleView) -> None:
        self.people_view = view
        self.people_tab.set_view(view)
        for host, section in self.sections.items():
            section.set_idle(self._idle_of(host))
        self.people_loaded.emit()

    def _idle_of(self, host: str) -> list[tuple[UnitKey, float, float]]:
        """Held-idle stretches of `host`, keyed as the plots key units."""
        if self.people_view is None:
            return []
        return [
            ((gpu, -1 if mig is None else mig), start, end)
            for (h, gpu, mig), found in self.people_view.stretches.items()
            if h == host
            for start, end in found
        ]

    def _apply_units(self, host: str, generation: int, data: RangeData) -> None:
        self._pending_units.discard(host)
        section = self.sections.get(host)
        if section is not None and generation == self.generation and host in data.hosts:
            section.set_units(data.hosts[host].units, data.plan)
            section.set_health(data.hosts[host].health, data.hosts[host].disks)
        self._maybe_done()

    def _maybe_done(self) -> None:
        """range_loaded once the overview and the lines of every built section are in."""
        if self._overview_key is not None and not self._pending_units:
            key, self._overview_key = self._overview_key, None
            self.range_loaded.emit(key)
            if not self._heat_timer.isActive():
                # The other hosts' heatmaps once the first frame is painted, not during it.
                QTimer.singleShot(HEATMAP_DELAY_MS, self.load_heatmaps)
                self._heat_timer.start()

    def _seed_live(self, data: RangeData) -> None:
        """Each host's newest free count, so the live cluster total starts from all of them."""
        self._live.clear()
        for host, h in data.hosts.items():
            if h.states and not h.states[-1].ok:
                continue
            fs = h.free
            for i in range(len(fs.t) - 1, -1, -1):
                if not math.isnan(fs.free_mean[i]):
                    self._live[host] = (round(fs.free_mean[i]), round(fs.total[i]))
                    break

    # --- sections -----------------------------------------------------------------

    def _section(self, host: str) -> HostSection:
        section = self.sections.get(host)
        if section is None:
            # The first host opens expanded; the others show a one-line summary and a
            # sparkline until opened, so a big cluster's window opens as fast as a small one's.
            section = HostSection(host, self.master, expanded=not self.sections)
            section.header.add_button(
                "PNG…", f"Save the plots of {host} as a PNG image", lambda h=host: self._ask_png(h)
            )
            section.header.add_button(
                "CSV…", f"Save the per-GPU data of {host} as CSV", lambda h=host: self._ask_csv(h)
            )
            section.header.toggled.connect(lambda _on: self._build_timer.start())
            self.sections[host] = section
            names = sorted(self.sections)
            self.column.insertWidget(1 + names.index(host), section)
            if host in self.heatmaps:
                section.set_heatmap(self.heatmaps[host])
            section.set_idle(self._idle_of(host))
            text = self.search.text().strip().lower()
            section.setVisible(not text or text in host.lower())
            self.empty.hide()
        return section

    def _build_visible(self) -> None:
        """Build the plots of sections in (or near) view; the others wait until scrolled to."""
        top = self.scroll.verticalScrollBar().value() - BUILD_MARGIN_PX
        bottom = top + self.scroll.viewport().height() + 2 * BUILD_MARGIN_PX
        built = False
        # Positions from size hints: right after sections are added, before the scroll
        # area has laid them out, their geometries are squeezed and would all look visible.
        y = 0
        spacing = self.column.spacing()
        for i in range(self.column.count()):
            w = self.column.itemAt(i).widget()
            if w is None or w.isHidden():
                continue
            h = max(w.height(), w.sizeHint().height())
            if isinstance(w, HostSection) and w.needs_building() and y + h >= top and y <= bottom:
                w.build()
                for name in PLOT_NAMES:
                    self._add_menu_actions(w.plots[name], w.host, name)
                if self.data is not None:
                    self._request_units(w)
                built = True
            y += h + spacing
        if built:
            self._build_timer.start()  # building moved things: look again

    def filter_hosts(self, text: str) -> None:
        needle = text.strip().lower()
        for host, section in self.sections.items():
            section.setVisible(not needle or needle in host.lower())
        shown = self.visible_hosts()
        if needle and len(shown) == 1:
            self.sections[shown[0]].set_expanded(True)
        self._build_timer.start()

    def visible_hosts(self) -> list[str]:
        return [h for h, s in self.sections.items() if not s.isHidden()]

    # --- live data ----------------------------------------------------------------

    def append_snapshot(self, snap: HostSnapshot) -> None:
        """Draw one new poll (GUI thread). Appends to the lines; reads nothing from disk."""
        t = snap.polled_at.timestamp()
        section = self._section(snap.name)
        if section.free.t.size and t <= section.free.t[-1]:
            return
        t_min = self._t_min()
        # Health is read in every state a host answers in; stale data is not this poll's.
        section.append_health(t, None if snap.stale else snap.health)
        if snap.state is HostState.OK and not snap.stale:
            units = host_units(snap, self.thresholds_for(snap.name))
            free, total = sum(1 for u in units if u.free), len(units)
            values: dict[UnitKey, tuple[object, object, object]] = {}
            info: dict[UnitKey, tuple[str, str, int | None]] = {}
            for gpu in snap.gpus:
                key = (gpu.index, -1)
                values[key] = (
                    or_none(gpu.utilization_pct),
                    or_none(gpu.memory_used_mib),
                    or_none(gpu.temperature_c),
                )
                info[key] = (f"GPU {gpu.index}", gpu.name, or_none(gpu.memory_total_mib))
                if gpu.mig_enabled:
                    for mig in gpu.mig_devices:
                        mkey = (gpu.index, mig.index)
                        values[mkey] = (None, or_none(mig.memory_used_mib), None)
                        info[mkey] = (
                            f"GPU {gpu.index} MIG {mig.index} ({mig.profile})",
                            gpu.name,
                            or_none(mig.memory_total_mib),
                        )
            section.mark_up(StateChange(int(t), "ok", None))
            section.append(t, values, info, free, total, t_min)
            self._live[snap.name] = (free, total)
        else:
            section.append_down(t, StateChange(int(t), snap.state.value, snap.message), t_min)
            self._live.pop(snap.name, None)
        self._after_append(t, section)

    def _after_append(self, t: float, section: HostSection) -> None:
        if self._live:
            free = sum(f for f, _ in self._live.values())
            total = sum(n for _, n in self._live.values())
            self.cluster.append(t, free, total, self._t_min())
        else:
            self.cluster.append(t, math.nan, math.nan, self._t_min())
        if self.following:
            _lo, hi = self.x_range()
            if t > hi - self.span * 0.005:
                self._set_x(t - self.span, t + self.span * 0.01)
        plan = self.data.plan if self.data else None
        if plan is not None and plan.tier is not RAW and section.live_points > LIVE_RELOAD_POINTS:
            section.live_points = 0
            self.reload()
        if not section.built:
            self._build_timer.start()

    def _follow(self) -> None:
        since = self._newest if self._newest is not None else self.clock() - self.span
        self.loader.submit("tail", lambda: self.reader.raw_since(since))

    def _apply_tail(self, update: LiveUpdate) -> None:
        events: list[tuple[int, int, object]] = [(p.ts, 1, p) for p in update.points]
        events += [(s.ts, 0, (host, s)) for host, s in update.states]
        for _ts, kind, item in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == 1:
                p = item
                section = self._section(p.host)  # type: ignore[attr-defined]
                if section.free.t.size and p.ts <= section.free.t[-1]:  # type: ignore[attr-defined]
                    continue
                values, info = {}, {}
                for uid, vals in p.values.items():  # type: ignore[attr-defined]
                    u = update.units[uid]
                    values[u.key] = vals
                    info[u.key] = (u.label, u.model, u.memory_total_mib)
                section.append_health(p.ts, p.health)  # type: ignore[attr-defined]
                section.mark_up(StateChange(p.ts, "ok", None))  # type: ignore[attr-defined]
                section.append(p.ts, values, info, p.free, p.total, self._t_min())  # type: ignore[attr-defined]
                self._live[p.host] = (p.free, p.total)  # type: ignore[attr-defined]
                self._after_append(p.ts, section)  # type: ignore[attr-defined]
            else:
                host, state = item  # type: ignore[misc]
                if not state.ok:
                    section = self._section(host)
                    section.append_down(state.ts, state, self._t_min())
                    self._live.pop(host, None)
                    self._after_append(state.ts, section)
        if update.newest is not None:
            self._newest = max(self._newest or 0.0, float(update.newest))

    # --- heatmaps -----------------------------------------------------------------

    def load_heatmaps(self) -> None:
        now = self.clock()

        def work() -> dict[str, Heatmap]:
            return {h: self.reader.heatmap(h, now - HEATMAP_S, now) for h in self.reader.hosts()}

        self.loader.submit("heatmaps", work)

    # --- export -------------------------------------------------------------------

    def plot_item(self, host: str | None, plot: str) -> pg.PlotItem:
        """The cluster plot (host None), or a host's "util", "mem", "temp" or "free" plot
        (its section is built if it was not yet)."""
        if host is None:
            return self.master
        section = self.sections[host]
        section.build()
        return section.plots[plot]

    def render_plot(self, host: str | None, plot: str, width: int = 1200) -> QImage:
        """One plot as an image; "heatmap" is the host's heatmap."""
        if plot == "heatmap":
            assert host is not None
            section = self.sections[host]
            section.build()
            assert section.heat is not None
            return section.heat.grab().toImage()
        exporter = ImageExporter(self.plot_item(host, plot))
        exporter.parameters()["width"] = width
        return exporter.export(toBytes=True)

    def export_plot_png(self, host: str | None, plot: str, path: Path | str) -> None:
        """Render on the GUI thread (Qt painting must), write the file on a worker."""
        self._save_image(self.render_plot(host, plot), Path(path))

    def export_section_png(self, host: str | None, path: Path | str) -> None:
        """A whole section as it looks: its header (the host), legend, plots and heatmap."""
        section: QWidget = self.cluster
        if host is not None:
            section = self.sections[host]
            section.set_expanded(True)
            section.build()
        # What was just opened or built is laid out on the next event-loop turn; the
        # image should not wait for it, nor have the old (squeezed) size.
        section.layout().activate()
        least = section.minimumSizeHint().expandedTo(QSize(0, section.sizeHint().height()))
        if section.width() < least.width() or section.height() < least.height():
            section.resize(section.size().expandedTo(least))
        self._save_image(section.grab().toImage(), Path(path))

    def _save_image(self, image: QImage, path: Path) -> None:
        def work() -> str:
            if not image.save(str(path), "PNG"):
                raise OSError(f"cannot write {path}")
            return f"Saved the image to {path}"

        self.loader.submit("export", work)

    def export_csv(self, host: str | None, path: Path | str, kind: str = "gpus") -> None:
        """The data behind the plots of the current range: kind "gpus" (per-GPU values)
        or "free" (free-GPU counts; with host None, every host and the cluster)."""
        now = self.clock()
        t0, t1 = now - self.span, now + 1
        hosts = None if host is None else [host]
        target = Path(path)

        def work() -> str:
            with target.open("w", newline="", encoding="utf-8") as out:
                if kind == "free":
                    n = self.reader.export_free_csv(out, t0, t1, hosts, cluster=host is None)
                else:
                    n = self.reader.export_units_csv(out, t0, t1, hosts)
            return f"Saved {n} rows to {target}"

        self.loader.submit("export", work)

    def _default_name(self, host: str | None, what: str, ext: str) -> str:
        stem = f"gpu-tray-{host or 'all-hosts'}-{what}-{self.range_key}"
        return str(Path.home() / f"{stem}.{ext}")

    def _ask(self, host: str | None, what: str, ext: str, save: Callable[[str], None]) -> None:
        filt = "PNG image (*.png)" if ext == "png" else "CSV (*.csv)"
        default = self._default_name(host, what, ext)
        path, _ = QFileDialog.getSaveFileName(self, "Save as", default, filt)
        if path:
            save(path)

    def _ask_png(self, host: str) -> None:
        self._ask(host, "plots", "png", lambda p: self.export_section_png(host, p))

    def _ask_csv(self, host: str) -> None:
        self._ask(host, "gpus", "csv", lambda p: self.export_csv(host, p, "gpus"))

    def _ask_cluster_png(self) -> None:
        self._ask(None, "free", "png", lambda p: self.export_plot_png(None, "free", p))

    def _ask_cluster_csv(self) -> None:
        self._ask(None, "free", "csv", lambda p: self.export_csv(None, p, "free"))

    def _add_menu_actions(self, plot: pg.PlotItem, host: str | None, name: str) -> None:
        """Right-click on any plot: save it as PNG, save its data as CSV."""
        menu = plot.getViewBox().menu
        if menu is None:
            return
        menu.addSeparator()
        kind = "free" if name == "free" else "gpus"
        menu.addAction("Save this plot as PNG…").triggered.connect(
            lambda: self._ask(host, name, "png", lambda p: self.export_plot_png(host, name, p))
        )
        menu.addAction("Save its data as CSV…").triggered.connect(
            lambda: self._ask(host, kind, "csv", lambda p: self.export_csv(host, p, kind))
        )

    # --- window -------------------------------------------------------------------

    def show_and_raise(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def show_when_ready(self, timeout_ms: int = SHOW_WAIT_MS) -> None:
        """Show the window once its first range is drawn (or after timeout_ms, whichever
        is first): painting an empty window first would only delay the full one."""
        if self.isVisible():
            self.show_and_raise()
            return
        if self._overview_key is None and self.data is not None:
            self.show_and_raise()
            return
        timer = QTimer(self, singleShot=True, interval=timeout_ms)
        shown = []

        def show() -> None:
            if not shown:
                shown.append(True)
                timer.stop()
                self.range_loaded.disconnect(show)
                self.show_and_raise()

        timer.timeout.connect(show)
        self.range_loaded.connect(show)
        timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        if self.follow_db:
            self._follow_timer.start()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._follow_timer.stop()
        super().closeEvent(event)


_windows: dict[Path, HistoryWindow] = {}


def open_history_window(
    store_path: Path | str,
    parent: QWidget | None = None,
    *,
    thresholds_for: ThresholdsFor | None = None,
    follow_db: bool = False,
    idle: IdleSettings | None = None,
) -> HistoryWindow:
    """Show the history window for `store_path` (GUI thread), reusing an open one.

    The caller forwards new snapshots with `window.append_snapshot(snap)` (GUI thread).
    """
    path = Path(store_path)
    window = _windows.get(path)
    if window is None:
        window = HistoryWindow(
            path, parent, thresholds_for=thresholds_for, follow_db=follow_db, idle=idle
        )
        window.destroyed.connect(lambda *_: _windows.pop(path, None))
        _windows[path] = window
        window.show_when_ready()
    else:
        window.reload()
        window.show_and_raise()
    return window
