"""Screenshots of idle holders, people and expected free times, for the README.

Run under a real X server: `xvfb-run -a .venv/bin/python -m tests.idle.shoot_idle DIR`.
Writes DIR/tray-menu-idle.png (the menu with a host open), DIR/tray-menu-people.png
(the People section), DIR/history-people.png (the People tab on the demo's week) and
DIR/history-idle-shading.png (held-idle stretches shaded).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TZ", "UTC")


def _settle(app, rounds: int = 20) -> None:
    import time

    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.05)


def shoot_menu(app, out: Path) -> None:
    from datetime import timedelta

    from PySide6.QtCore import QPoint

    from gpu_tray.ui.tray.menu import TrayMenu
    from tests.idle.traces import T0
    from tests.ui.test_menu_idle import _Actions, run_controller

    c, _ = run_controller(131)
    c.seed_history({}, {"alice.longname": 2.0}, {"alice.longname": 30.5, "bob": 11.0}, {})
    st = c.state(paused=False, autostart=True)
    now = T0 + timedelta(minutes=130)
    for name, opens in (("tray-menu-idle.png", "gpu-node1"), ("tray-menu-people.png", "People")):
        menu = TrayMenu(_Actions(), lambda: st, clock=lambda: now)
        menu.menu.popup(QPoint(10, 10))
        _settle(app)
        [action] = [a for a in menu.menu.actions() if a.menu() and a.text().startswith(opens)]
        menu.menu.setActiveAction(action)
        action.menu().popup(menu.menu.geometry().topRight() + QPoint(0, 40))
        _settle(app)
        screen = app.primaryScreen()
        sub = action.menu().geometry()
        right = max(sub.right(), menu.menu.geometry().right()) + 10
        bottom = max(sub.bottom(), menu.menu.geometry().bottom()) + 10
        screen.grabWindow(0, 0, 0, right, bottom).save(str(out / name))
        action.menu().hide()
        menu.menu.hide()
        _settle(app, 4)


def shoot_history(app, out: Path) -> None:
    from gpu_tray.core.settings import IdleSettings
    from gpu_tray.store import Recorder, open_store
    from gpu_tray.ui.history.window import HistoryWindow
    from tests.idle.traces import BLIP, BUSY, IDLE, snapshots
    from tests.ui.history_fixtures import NOW_TS, demo_db

    w = HistoryWindow(demo_db(), clock=lambda: NOW_TS, initial_range="24h", idle=IdleSettings())
    w.resize(1100, 560)
    w.show()
    for _ in range(200):
        _settle(app, 1)
        if w.people_view is not None:
            break
    w.tabs.setCurrentIndex(1)
    _settle(app)
    w.grab().save(str(out / "history-people.png"))
    w.close()

    tmp = Path(tempfile.mkdtemp(prefix="gpu-tray-shoot-"))
    db = tmp / "history.sqlite3"
    snaps = snapshots(IDLE + [(m, 90, IDLE[0][2]) for m in range(46, 61)]) + snapshots(
        BLIP, host="gpu-node1", index=1
    ) + snapshots(BUSY, host="gpu-node1", index=2)
    snaps.sort(key=lambda s: s.polled_at)
    # One snapshot per poll with all three GPUs, as a poller makes it.
    from dataclasses import replace

    merged = {}
    for s in snaps:
        prev = merged.get(s.polled_at)
        merged[s.polled_at] = s if prev is None else replace(prev, gpus=prev.gpus + s.gpus)
    end = max(merged).timestamp()
    conn = open_store(db)
    Recorder(conn, clock=lambda: end).write(merged.values())
    conn.close()
    w = HistoryWindow(db, clock=lambda: end + 60, initial_range="1h", idle=IdleSettings())
    w.resize(1100, 620)
    w.show()
    for _ in range(200):
        _settle(app, 1)
        if w.people_view is not None and w.sections.get("gpu-node1") and w.sections[
            "gpu-node1"
        ]._idle_items:
            break
    _settle(app)
    w.grab().save(str(out / "history-idle-shading.png"))
    w.close()


def main() -> None:
    from PySide6.QtWidgets import QApplication

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["gpu-tray"])
    shoot_menu(app, out)
    shoot_history(app, out)


if __name__ == "__main__":
    main()
