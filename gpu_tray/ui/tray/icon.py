"""The tray icon: the number of free GPUs on a coloured disc, painted from the summary.

A pure function of `ClusterSummary` (no state, no I/O), drawn separately for
each size a panel may ask for and for HiDPI scale 2, so the digits are laid
out for the real pixel grid instead of being scaled down from a big image.

Colours (DESIGN.md): green = free GPUs, red = none free, amber = free GPUs but
none a watch rule asks for, grey = no data or every host down. Marks, each
in its own corner, white-ringed so they read on every disc colour:
- top right, a dark dot with "!": some hosts are failing or some GPUs are faulty;
- bottom right, a pause sign: polling is paused;
- bottom left, a white dot with clock hands: some data is stale.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QIcon, QImage, QPainter, QPen, QPixmap

from gpu_tray.core.availability import ClusterSummary

SIZES = (16, 22, 24, 32, 48, 64)
SCALES = (1, 2)

DISC = {
    "green": QColor("#2e7d32"),
    "red": QColor("#c62828"),
    "amber": QColor("#f9a825"),
    "grey": QColor("#757575"),
}
# Dark text on amber: white on that yellow is unreadable.
TEXT = {
    "green": QColor("#ffffff"),
    "red": QColor("#ffffff"),
    "amber": QColor("#1b1b1b"),
    "grey": QColor("#ffffff"),
}
OUTLINE = QColor(0, 0, 0, 110)
MARK_FILL = QColor("#1b1b1b")
MARK_RING = QColor("#ffffff")
FONT_FAMILY = "DejaVu Sans"


def count_text(summary: ClusterSummary) -> str:
    """What the disc says; "" for no data (a bar is drawn instead of a number)."""
    if summary.colour == "grey":
        return ""
    return "99+" if summary.free > 99 else str(summary.free)


@lru_cache(maxsize=64)
def _font(pixel_size: int) -> QFont:
    font = QFont(FONT_FAMILY)
    font.setPixelSize(pixel_size)
    font.setBold(True)
    font.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
    font.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    return font


def _fit_text(text: str, box_w: float, box_h: float) -> tuple[QFont, float, QRectF]:
    """The biggest bold font whose digits fit the box, squeezing up to 25 % sideways
    before shrinking (so "99+" stays tall at 16 px). Returns (font, x scale, ink rect)."""
    size = max(6, int(box_h * 1.45))
    while True:
        font = _font(size)
        ink = QFontMetricsF(font).tightBoundingRect(text)
        squeeze = min(1.0, box_w / ink.width()) if ink.width() > 0 else 1.0
        if (ink.height() <= box_h and squeeze >= 0.75) or size <= 6:
            return font, max(squeeze, 0.75), ink
        size -= 1


def _ring_pen(width: float) -> QPen:
    pen = QPen(MARK_RING)
    pen.setWidthF(width)
    return pen


def _mark_radius(size: int) -> float:
    return max(2.5, size * 0.17)


def _paint_failing(p: QPainter, size: int, scale: int) -> None:
    r = _mark_radius(size)
    c = QPointF(size - r - 0.2, r + 0.2)
    p.setPen(_ring_pen(max(1.0, size / 24)))
    p.setBrush(MARK_FILL)
    p.drawEllipse(c, r, r)
    if size * scale >= 22:  # room for the "!" in device pixels
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(MARK_RING)
        w = max(1.2, r * 0.32)
        p.drawRect(QRectF(c.x() - w / 2, c.y() - r * 0.58, w, r * 0.72))
        p.drawRect(QRectF(c.x() - w / 2, c.y() + r * 0.28, w, w))


def _paint_paused(p: QPainter, size: int) -> None:
    r = _mark_radius(size)
    box = QRectF(size - 2 * r - 0.2, size - 2 * r - 0.2, 2 * r, 2 * r)
    p.setPen(_ring_pen(max(1.0, size / 24)))
    p.setBrush(MARK_FILL)
    p.drawRoundedRect(box, r * 0.35, r * 0.35)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(MARK_RING)
    bar_w = max(1.0, r * 0.36)
    bar_h = r * 1.1
    top = box.center().y() - bar_h / 2
    gap = max(1.0, r * 0.32)
    p.drawRect(QRectF(box.center().x() - gap / 2 - bar_w, top, bar_w, bar_h))
    p.drawRect(QRectF(box.center().x() + gap / 2, top, bar_w, bar_h))


def _paint_stale(p: QPainter, size: int, scale: int) -> None:
    r = _mark_radius(size)
    c = QPointF(r + 0.2, size - r - 0.2)
    pen = QPen(MARK_FILL)
    pen.setWidthF(max(1.0, size / 24))
    p.setPen(pen)
    p.setBrush(MARK_RING)
    p.drawEllipse(c, r, r)
    if size * scale >= 22:
        hand = QPen(MARK_FILL)
        hand.setWidthF(max(1.0, r * 0.25))
        hand.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(hand)
        p.drawLine(c, QPointF(c.x(), c.y() - r * 0.6))
        p.drawLine(c, QPointF(c.x() + r * 0.45, c.y()))


def render_image(summary: ClusterSummary, size: int, scale: int = 1) -> QImage:
    """The icon at `size` logical pixels and device pixel ratio `scale`."""
    image = QImage(size * scale, size * scale, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(scale)
    image.fill(Qt.GlobalColor.transparent)
    colour = summary.colour
    p = QPainter(image)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        outline = QPen(OUTLINE)
        outline.setWidthF(1.0 / scale)
        p.setPen(outline)
        p.setBrush(DISC[colour])
        inset = 0.5 / scale
        p.drawEllipse(QRectF(inset, inset, size - 2 * inset, size - 2 * inset))

        text = count_text(summary)
        if not text:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(TEXT[colour])
            bar_h = max(2.0, size * 0.14)
            p.drawRoundedRect(
                QRectF(size * 0.27, (size - bar_h) / 2, size * 0.46, bar_h), bar_h / 3, bar_h / 3
            )
        marks = (
            (summary.needs_attention and colour != "grey")
            + summary.paused
            + (summary.hosts_stale > 0)
        )
        # The digits get most of the disc; long labels a wider box; marks in the
        # corners take a little room from them.
        box_w = size * (0.74 if len(text) < 3 else 0.86) * (0.9 if marks else 1.0)
        box_h = size * (0.56 if len(text) < 3 else 0.46) * (0.9 if marks else 1.0)
        if text:
            font, squeeze, ink = _fit_text(text, box_w, box_h)
            p.setFont(font)
            p.setPen(TEXT[colour])
            p.save()
            p.translate(size / 2, size / 2)
            p.scale(squeeze, 1.0)
            # Centre the ink, not the line box: digits have no descenders.
            p.drawText(QPointF(-ink.center().x(), -ink.center().y()), text)
            p.restore()

        if marks and summary.needs_attention and colour != "grey":
            _paint_failing(p, size, scale)
        if summary.paused:
            _paint_paused(p, size)
        if summary.hosts_stale > 0:
            _paint_stale(p, size, scale)
    finally:
        p.end()
    return image


def dot_image(colour: str, size: int, scale: int = 1) -> QImage:
    """A plain disc in one of the icon's colours: a host's state in the menu."""
    image = QImage(size * scale, size * scale, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(scale)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(OUTLINE)
        pen.setWidthF(1.0 / scale)
        p.setPen(pen)
        p.setBrush(DISC[colour])
        inset = 0.5 / scale
        p.drawEllipse(QRectF(inset, inset, size - 2 * inset, size - 2 * inset))
    finally:
        p.end()
    return image


@lru_cache(maxsize=32)
def paint_icon(summary: ClusterSummary) -> QIcon:
    """A QIcon with a hand-laid pixmap for every tray size at scale 1 and 2."""
    icon = QIcon()
    for size in SIZES:
        for scale in SCALES:
            icon.addPixmap(QPixmap.fromImage(render_image(summary, size, scale)))
    return icon
