"""The painted tray icon: the disc's colour in each state, the digits, the marks, HiDPI."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QImage

from gpu_tray.core.availability import ClusterSummary
from gpu_tray.ui.tray.icon import (
    DISC,
    MARK_FILL,
    MARK_RING,
    TEXT,
    count_text,
    paint_icon,
    render_image,
)

S = ClusterSummary
SIZES = (16, 22, 24, 32)
SCALES = (1, 2)

STATES = {
    "green": S(3, 23, 5, 0, 0),
    "red": S(0, 23, 5, 0, 0),
    "amber": S(4, 23, 5, 0, 0, free_watched=0),
    "grey": S(0, 0, 5, 5, 0),
}


def pixel(image: QImage, x: float, y: float) -> QColor:
    """Colour at logical (x, y) as a fraction of the icon's size."""
    return image.pixelColor(int(x * image.width()), int(y * image.height()))


def close(a: QColor, b: QColor, tol: int = 6) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))


def ink_pixels(image: QImage, colour: QColor) -> int:
    """Pixels of the text colour inside the middle of the disc."""
    w, h = image.width(), image.height()
    return sum(
        1
        for y in range(int(h * 0.2), int(h * 0.8))
        for x in range(int(w * 0.1), int(w * 0.9))
        if close(image.pixelColor(x, y), colour, 40)
    )


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("colour", list(STATES))
def test_disc_colour_per_state(qapp, colour: str, size: int, scale: int) -> None:
    image = render_image(STATES[colour], size, scale)
    assert (image.width(), image.height()) == (size * scale, size * scale)
    assert image.devicePixelRatio() == scale
    # Above and below the digits, inside the disc.
    assert close(pixel(image, 0.5, 0.14), DISC[colour]), pixel(image, 0.5, 0.14).name()
    assert close(pixel(image, 0.5, 0.87), DISC[colour]), pixel(image, 0.5, 0.87).name()
    # Outside the disc: transparent.
    assert image.pixelColor(0, 0).alpha() == 0


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("size", SIZES)
def test_digits_are_drawn_and_tell_counts_apart(qapp, size: int, scale: int) -> None:
    images = {n: render_image(S(n, 200, 5, 0, 0), size, scale) for n in (1, 3, 7, 8, 12, 42, 99)}
    for image in images.values():
        assert ink_pixels(image, TEXT["green"]) >= size * scale // 2
    # Every count looks different from every other.
    as_bytes = {n: bytes(img.constBits()) for n, img in images.items()}
    assert len(set(as_bytes.values())) == len(as_bytes)
    # The amber disc has dark digits.
    assert (
        ink_pixels(render_image(STATES["amber"], size, scale), TEXT["amber"]) >= size * scale // 2
    )


def test_no_data_draws_a_bar_not_a_number(qapp) -> None:
    grey = render_image(STATES["grey"], 32, 1)
    assert close(pixel(grey, 0.5, 0.5), TEXT["grey"])  # the bar in the middle
    assert close(pixel(grey, 0.5, 0.3), DISC["grey"])  # nothing above it
    assert count_text(STATES["grey"]) == ""


def test_counts_above_99_show_99_plus(qapp) -> None:
    assert count_text(S(150, 400, 50, 0, 0)) == "99+"
    assert count_text(S(99, 400, 50, 0, 0)) == "99"
    a = render_image(S(100, 400, 50, 0, 0), 24, 1)
    b = render_image(S(5000, 9000, 500, 0, 0), 24, 1)
    c = render_image(S(99, 400, 50, 0, 0), 24, 1)
    assert bytes(a.constBits()) == bytes(b.constBits())
    assert bytes(a.constBits()) != bytes(c.constBits())


@pytest.mark.parametrize("size", SIZES)
def test_marks_for_failing_paused_and_stale(qapp, size: int) -> None:
    plain = render_image(S(5, 20, 5, 0, 0), size, 2)
    failing = render_image(S(5, 20, 5, 1, 0), size, 2)
    paused = render_image(S(5, 20, 5, 0, 0, paused=True), size, 2)
    stale = render_image(S(5, 20, 5, 1, 1), size, 2)
    r = max(2.5, size * 0.17) / size  # the mark's radius as a fraction of the icon
    top_right, bottom_right = (1 - r, r), (1 - r, 1 - r)
    bottom_left = (r * 0.7, 1 - r * 0.7)  # below-left of the centre: clear of the clock hands
    # Each mark is a dark or white blob in its own corner, where the plain icon has none.
    assert not close(pixel(plain, *top_right), MARK_FILL)
    assert close(pixel(failing, *top_right), MARK_FILL) or close(
        pixel(failing, *top_right), MARK_RING
    )
    assert not close(pixel(failing, *bottom_right), MARK_FILL)
    assert close(pixel(paused, *bottom_right), MARK_FILL) or close(
        pixel(paused, *bottom_right), MARK_RING
    )
    assert not close(pixel(paused, *top_right), MARK_FILL)
    assert close(pixel(stale, *bottom_left), MARK_RING) or close(
        pixel(stale, *bottom_left), MARK_FILL
    )
    assert not close(pixel(failing, *bottom_left), MARK_RING)
    # The three states look different from each other and from the plain icon.
    images = [bytes(i.constBits()) for i in (plain, failing, paused, stale)]
    assert len(set(images)) == 4


def test_icon_has_a_pixmap_for_every_tray_size_and_hidpi(qapp) -> None:
    icon = paint_icon(STATES["green"])
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(n, n) for n in SIZES} <= sizes
    hidpi = icon.pixmap(QSize(22, 22), 2.0)
    assert (hidpi.width(), hidpi.height()) == (44, 44)
    # Painted for that size at scale 2, not a blown-up 22 px image.
    assert hidpi.toImage() == render_image(STATES["green"], 22, 2)


@pytest.mark.parametrize("size", SIZES)
def test_a_faulty_gpu_gets_the_attention_mark(qapp, size: int) -> None:
    # A GPU that needs a reset is as much a call to act as a failing host: same "!".
    failing = render_image(S(5, 20, 5, 1, 0), size, 2)
    faulty = render_image(S(5, 20, 5, 0, 0, gpus_faulty=1), size, 2)
    plain = render_image(S(5, 20, 5, 0, 0), size, 2)
    assert bytes(faulty.constBits()) == bytes(failing.constBits())
    assert bytes(faulty.constBits()) != bytes(plain.constBits())
