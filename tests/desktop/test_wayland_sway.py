"""gpu-tray on Wayland: sway (headless) with waybar's tray as the StatusNotifierItem host.

The app runs with QT_QPA_PLATFORM=wayland as a test user (sway refuses root).
The item registers with waybar; the test reads its tooltip and exported menu
over D-Bus and sends Activate (a left click): the status window must open as a
real window that sway manages, with no "Failed to create grabbing popup".
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.desktop.test_tray_desktop import config_text, pixel_colours, running_app
from tests.harness.desktop import wait_for
from tests.harness.scripted import ROOT
from tests.harness.wayland import SwayDesktop, why_not

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.slow,
    pytest.mark.skipif(why_not() is not None, reason=str(why_not())),
]

# Screenshots land here (ignored by git); the ones the README shows are copied to docs/screenshots/.
SCREENSHOTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def sway() -> Iterator[SwayDesktop]:
    with SwayDesktop() as d:
        yield d


def our_item(d: SwayDesktop) -> str | None:
    return next((i for i in d.sni_items() if "gpu-tray" in d.sni_property(i, "Id")), None)


def activate(d: SwayDesktop, item: str) -> None:
    service, _, path = item.partition("/")
    d.dbus_call(service, "/" + path, "org.kde.StatusNotifierItem.Activate", "int32:900", "int32:15")


def test_tray_tooltip_menu_and_left_click_on_sway_with_waybar(sway: SwayDesktop) -> None:
    with running_app(sway, sway.root / "app", "app-wayland", config_text()) as app:
        item = wait_for(lambda: our_item(sway), 20, "gpu-tray among waybar's SNI items")
        app.wait_polls("node3", 1)
        tip = wait_for(
            lambda: "node3: 1/4 free" in (t := sway.sni_property(item, "ToolTip")) and t,
            10,
            "the tooltip with node3",
        )
        assert "gpu-tray (demo): 1 of 6 GPUs free on 3 hosts, 1 failing" in tip
        service = item.split("/")[0]
        sway.dbus_call(service, "/MenuBar", "com.canonical.dbusmenu.AboutToShow", "int32:0")
        layout = sway.dbus_call(
            service, "/MenuBar", "com.canonical.dbusmenu.GetLayout",
            "int32:0", "int32:-1", "array:string:label",
        )  # fmt: skip
        labels = re.findall(r'string "label"\s+variant\s+string "([^"]*)"', layout)
        for want in ("node3 — 1/4 free", "Refresh now", "Quit"):
            assert want in labels, labels
        # waybar draws labels with dbusmenu-gtk too: "_" goes out doubled.
        assert "showing the icon (StatusNotifierItem)" in app.log()
        assert "Scripted cluster (from $GPU__TRAY__DEMO__SCRIPT)" in labels

        # The icon is drawn in waybar's tray: amber (a GPU is free, not the watched one).
        tray = (1024 - 220, 0, 220, 30)
        wait_for(
            lambda: (
                "#f9a825"
                in pixel_colours(sway.screenshot(sway.root / "bar.png", crop=tray), (0, 0, 220, 30))
            ),
            10,
            "the amber icon in waybar",
        )
        sway.screenshot(SCREENSHOTS / "sway-waybar.png", crop=tray, zoom=2)

        # Left click: a real window, managed by sway.
        assert sway.windows("gpu-tray") == []
        activate(sway, item)
        [window] = wait_for(lambda: sway.windows("gpu-tray"), 15, "the status window on sway")
        assert window["name"] == "gpu-tray"
        assert "tray icon activated: showing the status window" in app.log()
        sway.screenshot(SCREENSHOTS / "sway-status-window.png")
        activate(sway, item)
        wait_for(lambda: not sway.windows("gpu-tray"), 15, "the status window to close")
        assert "Failed to create grabbing popup" not in app.log()
        # (qt.qpa.wayland.textinput chatters about focus on a headless seat: not a fault.)
        assert not re.search(r"^qt\.qpa\.wayland: ", app.log(), re.M), app.log()
