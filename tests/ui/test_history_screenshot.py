"""A screenshot of the history window on the demo's week, kept in tests/artifacts/.

Two hosts open (an A100 box and the H100 one with MIG devices), the mouse over
the first host's utilisation plot so the readout shows. Look at it after UI
changes: it is how the window looks to a newcomer.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from gpu_tray.ui.history.colors import unit_colour

from .history_fixtures import NOW_TS, demo_db, open_window
from .test_history_export import _pixels_like, _rgb

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "history_window.png"


def test_screenshot_of_the_window_with_demo_data(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    w.resize(1360, 1320)
    h100 = w.sections["demo-h100"]
    h100.set_expanded(True)
    qtbot.waitUntil(lambda: h100.built and len(h100.units) == 12, timeout=30_000)
    qtbot.waitUntil(lambda: len(w.heatmaps) == len(w.sections), timeout=30_000)
    first = w.sections["demo-a100"]
    plot = first.plots["util"]
    first._mouse((plot.getViewBox().mapViewToScene(QPointF(NOW_TS - 5 * 3600, 50)),))
    QApplication.processEvents()
    image = w.grab().toImage()
    ARTIFACT.parent.mkdir(exist_ok=True)
    assert image.save(str(ARTIFACT))
    rgb = _rgb(image)
    for i in range(8):
        assert _pixels_like(rgb, unit_colour(i)) > 30, f"GPU {i}'s colour is missing"
    assert "Utilisation:" in first.readout.text()
