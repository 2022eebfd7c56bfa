"""Run on a real X server (the test starts Xvfb): open the tray menu and node3's submenu
(a host over 90 % RAM) as a user would see them, save a screenshot, print the texts."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtWidgets import QApplication

from gpu_tray.ui.tray.menu import TrayMenu
from tests.ui.menu_health_state import NOW, state


class _Quiet:
    def __getattr__(self, name: str):
        return lambda *args: None


def main(out: str) -> None:
    app = QApplication([])
    st = state()
    tray = TrayMenu(_Quiet(), lambda: st, clock=lambda: NOW)  # type: ignore[arg-type]
    menu = tray.menu
    menu.popup(QPoint(8, 8))

    def open_host() -> None:
        [action] = [a for a in menu.actions() if a.menu() and a.text().startswith("node3")]
        menu.setActiveAction(action)
        sub = action.menu()
        sub.popup(menu.mapToGlobal(menu.actionGeometry(action).topRight()))
        QTimer.singleShot(600, lambda: shoot([a.text() for a in sub.actions()]))

    def shoot(sub_texts: list[str]) -> None:
        screen = app.primaryScreen()
        shot = screen.grabWindow(0)
        shot.copy(0, 0, 740, 310).save(out)
        print(json.dumps({"menu": [a.text() for a in menu.actions()], "submenu": sub_texts}))
        app.quit()

    QTimer.singleShot(600, open_host)
    app.exec()


if __name__ == "__main__":
    main(sys.argv[1])
