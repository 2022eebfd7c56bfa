"""Host health in the tray menu and tooltip: load, RAM and disks per host, and a clear
mark with the reason in words for a host over 90 % RAM or disk. The last test draws the
menu on a real X server (Xvfb) and saves the screenshot the README shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMenu

from gpu_tray.presenter.text import tooltip
from gpu_tray.ui.tray.menu import TrayMenu
from tests.harness.desktop import Desktop
from tests.ui.menu_health_state import CONFIG, NOW, snapshots, state

ROOT = Path(__file__).resolve().parents[2]


class Quiet:
    def __getattr__(self, name: str):
        return lambda *args: None


def texts(menu: QMenu) -> list[str]:
    return [a.text() if not a.isSeparator() else "--" for a in menu.actions()]


def opened(menu: QMenu, prefix: str) -> QMenu:
    [action] = [a for a in menu.actions() if a.menu() and a.text().startswith(prefix)]
    sub = action.menu()
    sub.aboutToShow.emit()
    return sub


def make_menu() -> TrayMenu:
    st = state()
    menu = TrayMenu(Quiet(), lambda: st, clock=lambda: NOW)  # type: ignore[arg-type]
    menu.menu.aboutToShow.emit()
    return menu


def test_hosts_over_the_limit_are_marked_with_the_reason(qapp) -> None:
    menu = make_menu()
    assert texts(menu.menu)[2:7] == [
        "node3 — 1/2 free · ⚠ RAM 96% full",
        "node7 — 0/1 free · ⚠ /home 95% full",
        "node8 — 1/1 free",  # health unknown: no mark, never an error
        "node9 — timeout",
        "    No answer from node9 within 10 s",
    ]


def test_host_submenu_shows_load_ram_and_disks(qapp) -> None:
    menu = make_menu()
    assert texts(opened(menu.menu, "node3"))[:5] == [
        "From SSH",
        "Load 31.5 on 64 CPUs · RAM 96% of 512 GiB",
        "Disk / 42% of 450 GiB · /scratch 70% of 4.0 TiB",
        "⚠ RAM 96% full",
        "Click a GPU to be told when it is free",
    ]
    assert texts(opened(menu.menu, "node7"))[:4] == [
        "From SSH",
        "Load 2.2 on 32 CPUs · RAM 25% of 256 GiB",
        "Disk / 21% of 450 GiB · /home 95% of 900 GiB",
        "⚠ /home 95% full",
    ]
    assert texts(opened(menu.menu, "node8"))[:3] == [
        "From SSH",
        "Load ? · RAM ?",
        "Disk / ?",
    ]
    assert texts(opened(menu.menu, "node9"))[:2] == [
        "From SSH",
        "timeout: No answer from node9 within 10 s",
    ]


def test_tooltip_marks_the_same_hosts(qapp) -> None:
    snaps = snapshots()
    assert tooltip(snaps, state().summary, CONFIG.thresholds_for, NOW).splitlines() == [
        "gpu-tray: 2 of 4 GPUs free on 4 hosts, 1 failing",
        "node3: 1/2 free · ⚠ RAM 96% full",
        "node7: 0/1 free · ⚠ /home 95% full",
        "node8: 1/1 free",
        "node9: timeout",
    ]


@pytest.mark.desktop
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_menu_screenshot_on_a_real_x_server(tmp_path: Path) -> None:
    shot = ROOT / "tests" / "artifacts" / "tray-menu-health.png"
    shot.parent.mkdir(exist_ok=True)
    with Desktop(tmp_path, tray=False, notifications=False) as desktop:
        env = dict(desktop.env, PYTHONPATH=str(ROOT))
        env.pop("QT_QPA_PLATFORMTHEME", None)
        out = subprocess.run(
            [sys.executable, "-m", "tests.ui.shoot_menu_health", str(shot)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert "node3 — 1/2 free · ⚠ RAM 96% full" in seen["menu"]
    assert "⚠ RAM 96% full" in seen["submenu"]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (740, 310)
    # Something was drawn: a menu, not a black screen.
    colours = {image.pixelColor(x, y).name() for x in range(0, 740, 25) for y in range(0, 310, 25)}
    assert len(colours) > 3
