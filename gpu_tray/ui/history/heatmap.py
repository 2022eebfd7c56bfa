"""The "when is it usually free?" heatmap: weekday x hour of day, local time.

Each cell is the share of polls in that hour of the week (over the last four
weeks) in which at least one GPU on the host was free: pale is rarely, dark
green is nearly always, grey is no data. Painted with QPainter: 168 rectangles
do not need a plot widget, and the window opens faster without one.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from gpu_tray.store.reader import WEEKDAYS, Heatmap

NO_DATA = QColor(225, 225, 225)
NO_DATA_HATCH = QColor(170, 170, 170)
# ColorBrewer "Greens", from rarely free to nearly always free.
_STOPS = (
    (0.00, (247, 252, 245)),
    (0.25, (199, 233, 192)),
    (0.50, (116, 196, 118)),
    (0.75, (35, 139, 69)),
    (1.00, (0, 68, 27)),
)


def fraction_colour(value: float | None) -> QColor:
    if value is None:
        return QColor(NO_DATA)
    v = min(max(value, 0.0), 1.0)
    for (x0, c0), (x1, c1) in itertools.pairwise(_STOPS):
        if v <= x1:
            f = (v - x0) / (x1 - x0)
            return QColor(*(round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True)))
    return QColor(*_STOPS[-1][1])


class HeatmapWidget(QWidget):
    """`hovered(text)` describes the cell under the mouse ("" when it leaves)."""

    hovered = Signal(str)
    TITLE = "When is a GPU free? (last 4 weeks)"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heatmap: Heatmap | None = None
        self._colours = [[QColor(NO_DATA)] * 24 for _ in range(7)]
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(QSize(300, 200))
        self.setToolTip("Share of polls with at least one free GPU, by weekday and hour")

    def sizeHint(self) -> QSize:
        return QSize(330, 330)

    def set_heatmap(self, heatmap: Heatmap | None) -> None:
        self.heatmap = heatmap
        self._colours = [[fraction_colour(self.value(d, h)) for h in range(24)] for d in range(7)]
        self.update()

    def value(self, day: int, hour: int) -> float | None:
        return None if self.heatmap is None else self.heatmap.fraction[day][hour]

    # --- geometry -------------------------------------------------------------------

    def _grid(self) -> QRect:
        fm = QFontMetrics(self.font())
        left = fm.horizontalAdvance("Wed") + 8
        top = fm.height() + 8
        bottom = fm.height() + 22
        return QRect(left, top, self.width() - left - 6, self.height() - top - bottom)

    def cell_rect(self, day: int, hour: int) -> QRect:
        g = self._grid()
        x0 = g.left() + g.width() * hour // 24
        x1 = g.left() + g.width() * (hour + 1) // 24
        y0 = g.top() + g.height() * day // 7
        y1 = g.top() + g.height() * (day + 1) // 7
        return QRect(x0, y0, x1 - x0, y1 - y0)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        g = self._grid()
        if not g.contains(pos) or g.width() <= 0 or g.height() <= 0:
            return None
        hour = (pos.x() - g.left()) * 24 // g.width()
        day = (pos.y() - g.top()) * 7 // g.height()
        return (min(day, 6), min(hour, 23))

    # --- painting -------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        fg = pal.text().color()
        fm = QFontMetrics(self.font())
        g = self._grid()
        p.setPen(fg)
        p.drawText(
            QRect(0, 2, self.width(), fm.height() + 4), Qt.AlignmentFlag.AlignHCenter, self.TITLE
        )
        for day in range(7):
            for hour in range(24):
                cell = self.cell_rect(day, hour).adjusted(0, 0, -1, -1)
                p.fillRect(cell, self._colours[day][hour])
                if self.value(day, hour) is None:  # hatched: never mistaken for "rarely"
                    p.fillRect(cell, QBrush(NO_DATA_HATCH, Qt.BrushStyle.BDiagPattern))
            r = self.cell_rect(day, 0)
            p.drawText(
                QRect(0, r.top(), g.left() - 6, r.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                WEEKDAYS[day],
            )
        for hour in range(0, 24, 3):
            r = self.cell_rect(6, hour)
            p.drawText(
                QRect(r.left() - 10, g.bottom() + 2, r.width() + 20, fm.height()),
                Qt.AlignmentFlag.AlignHCenter,
                f"{hour:02d}",
            )
        # The scale: rarely free ... nearly always free.
        y = g.bottom() + fm.height() + 6
        w = max(60, g.width() // 3)
        x = g.left() + (g.width() - w) // 2
        for i in range(w):
            p.fillRect(x + i, y, 1, 8, fraction_colour(i / (w - 1)))
        p.drawText(QRect(0, y - 3, x - 6, fm.height()), Qt.AlignmentFlag.AlignRight, "rarely")
        p.drawText(QRect(x + w + 6, y - 3, self.width(), fm.height()), 0, "always free")
        p.end()

    # --- hover ----------------------------------------------------------------------

    def describe(self, day: int, hour: int) -> str:
        name = f"{WEEKDAYS[day]} {hour:02d}:00–{(hour + 1) % 24:02d}:00"
        v = self.value(day, hour)
        if v is None or self.heatmap is None:
            return f"{name}: no data"
        n = self.heatmap.polls[day][hour]
        return f"{name}: at least one GPU free in {v:.0%} of {n} polls"

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        self.hovered.emit("" if cell is None else self.describe(*cell))

    def leaveEvent(self, _event: object) -> None:
        self.hovered.emit("")
