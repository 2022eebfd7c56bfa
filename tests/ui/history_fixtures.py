"""Seeded history databases and a window opened on them, for the history window tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from gpu_tray.store import HistoryWriter
from gpu_tray.store.demo_history import demo_history

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # a Monday afternoon
NOW_TS = NOW.timestamp()
_demo: Path | None = None


def demo_db() -> Path:
    """A week of the demo cluster up to NOW, built once per test run. Copy it to change it."""
    global _demo
    if _demo is None:
        tmp = Path(tempfile.mkdtemp(prefix="gpu-tray-history-ui-"))
        atexit.register(shutil.rmtree, tmp, True)
        path = tmp / "history-demo.sqlite3"
        w = HistoryWriter(path, backfill=lambda: demo_history(NOW), clock=lambda: NOW_TS)
        w.start()
        assert w.flush(timeout=300)
        w.stop()
        assert w.error is None
        _demo = path
    return _demo


def copy_of_demo(tmp_path: Path) -> Path:
    dest = tmp_path / "history.sqlite3"
    shutil.copy(demo_db(), dest)
    return dest


def open_window(qtbot, path: Path, key: str = "24h", **kw):  # -> HistoryWindow
    from gpu_tray.ui.history.window import HistoryWindow

    w = HistoryWindow(path, clock=lambda: NOW_TS, initial_range=key, **kw)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.range_loaded, timeout=60_000):
        w.show()
    return w
