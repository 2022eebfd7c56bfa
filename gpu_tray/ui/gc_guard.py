"""Collect Python garbage on the GUI thread only.

CPython runs its cycle collector on whichever thread happens to allocate when
a threshold is crossed; here that is usually a poller worker. If that sweep
frees a Qt object that belongs to the GUI thread (a menu, a window, an app
object caught in a reference cycle), Qt destroys it on the wrong thread and
the process crashes. So the automatic collector is switched off and a GUI-
thread timer runs the same generational collection instead.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadCollector(QObject):
    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threshold = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self._threshold
        if c0 > t0:
            generation = 2 if c2 > t2 else 1 if c1 > t1 else 0
            gc.collect(generation)

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        gc.enable()
