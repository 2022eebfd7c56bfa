"""The app's garbage is collected on the GUI thread's timer, not by whichever thread allocates."""

from __future__ import annotations

import gc
import threading

from gpu_tray.ui.gc_guard import GuiThreadCollector


class Cycle:
    def __init__(self, log: list[str]) -> None:
        self.me = self
        self.log = log

    def __del__(self) -> None:
        self.log.append(threading.current_thread().name)


def test_cycles_made_on_workers_are_freed_on_the_gui_thread(qtbot) -> None:
    gc.enable()
    collector = GuiThreadCollector(interval_ms=10)
    freed: list[str] = []
    try:
        assert not gc.isenabled()

        kept: list[list] = []

        def churn() -> None:
            for _ in range(20):
                Cycle(freed)
            # Live containers count towards the collector's threshold (700 by default).
            kept.extend([] for _ in range(5000))

        worker = threading.Thread(target=churn, name="poll:worker")
        worker.start()
        worker.join()
        assert freed == []  # the worker's allocations did not trigger a sweep
        qtbot.waitUntil(lambda: len(freed) == 20, timeout=5000)
        assert set(freed) == {"MainThread"}
    finally:
        collector.stop()
    assert gc.isenabled()
