"""The menu marks a faulty GPU and counts it; a unified-memory GPU shows as free."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu

from gpu_tray.ui.tray.menu import TrayMenu
from tests.ui.fault_menu import NOW, fault_state


def texts(menu: QMenu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_the_menu_marks_a_faulty_gpu_and_counts_it(qapp) -> None:
    state = fault_state()
    calls: list[tuple] = []

    class Recorder:
        def __getattr__(self, name: str):
            return lambda *args: calls.append((name, *args))

    menu = TrayMenu(Recorder(), lambda: state, clock=lambda: NOW)
    menu.rebuild()
    assert texts(menu.menu)[:3] == [
        "gpu-tray: 2 of 4 GPUs free on 2 hosts, 1 GPU faulty",
        "gpu-node1 — 1/3 free, 1 faulty",
        "spark — 1/1 free",
    ]
    sub = menu.menu.actions()[2].menu()
    sub.aboutToShow.emit()
    assert texts(sub)[2:5] == [
        "GPU 0 · A100 80GB · 0.0/80.0 GiB · 0% · free",
        "GPU 1 · A100 80GB · 0.0/80.0 GiB · 0% · FAULT: GPU requires reset",
        "GPU 2 · A100 80GB · 40.0/80.0 GiB · 97% · a.very-long-username",
    ]
    assert state.summary.needs_attention
