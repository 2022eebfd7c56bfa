"""A tray menu with a faulty GPU: the state both the menu test and the screenshot use.
`xvfb-run -a python -m tests.ui.fault_menu OUT.png` draws the open host submenu."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from gpu_tray.core.availability import summarize
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import Config
from gpu_tray.presenter.tray_state import TrayState
from gpu_tray.sources.ssh.nvsmi import GPU_FIELDS, MARK, parse_poll_output

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
CONFIG = Config()

POLL = "\n".join(
    [
        f"{MARK}gpus rc=0 fields={GPU_FIELDS}",
        "0, GPU-a, NVIDIA A100-SXM4-80GB, 81920, 0, 0, 31, 61.2, 00000000:07:00.0, Disabled",
        "1, GPU-b, NVIDIA A100-SXM4-80GB, 81920, 0, 0, [GPU requires reset], "
        "[GPU requires reset], 00000000:0B:00.0, Disabled",
        "2, GPU-c, NVIDIA A100-SXM4-80GB, 81920, 40960, 97, 70, 310.5, 00000000:48:00.0, Disabled",
        f"{MARK}apps rc=0",
        "GPU-c, 4242, 40900, python train.py",
        f"{MARK}owners",
        "   4242 a.very-long-username",
        f"{MARK}end",
    ]
).encode()

SPARK = "\n".join(
    [
        f"{MARK}gpus rc=0 fields={GPU_FIELDS}",
        "0, GPU-s, NVIDIA GB10, [N/A], [N/A], 0, 41, 4.56, 0000000F:01:00.0, [N/A]",
        f"{MARK}apps rc=0",
        f"{MARK}owners",
        f"{MARK}end",
    ]
).encode()


def fault_state() -> TrayState:
    snaps = tuple(
        HostSnapshot(name, HostState.OK, gpus=parse_poll_output(out).gpus, polled_at=NOW)
        for name, out in (("gpu-node1", POLL), ("spark", SPARK))
    )
    return TrayState(snaps, summarize(snaps, CONFIG.thresholds_for), CONFIG.thresholds_for)


def main(out: str) -> int:
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from gpu_tray.ui.tray.menu import TrayMenu

    app = QApplication([])
    state = fault_state()

    class Nothing:
        def __getattr__(self, name: str):
            return lambda *args: None

    menu = TrayMenu(Nothing(), lambda: state, clock=lambda: NOW)
    menu.rebuild()
    menu.menu.popup(QPoint(10, 10))
    sub = menu.menu.actions()[2].menu()
    sub.aboutToShow.emit()
    sub.popup(QPoint(10 + menu.menu.width(), 40))
    for _ in range(20):
        app.processEvents()
    screen = app.primaryScreen()
    width = menu.menu.width() + sub.width() + 30
    height = max(menu.menu.height(), sub.height() + 40) + 20
    screen.grabWindow(0, 0, 0, width, height).save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
