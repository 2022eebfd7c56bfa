"""gpu-tray on a real StatusNotifierItem host: xfce4-panel 4.18 under Xvfb, X11.

The panel (with xfconfd activated on a private session bus) is the host; the
test talks to the item over D-Bus as the panel does: it reads the tooltip,
fetches the exported menu (com.canonical.dbusmenu), opens it (AboutToShow) and
left-clicks the icon (Activate). dbus-monitor counts the menu updates.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desktop.test_tray_desktop import (
    config_text,
    pixel_colours,
    running_app,
    top_level_windows,
)
from tests.harness.desktop import Desktop, missing_tools, wait_for
from tests.harness.scripted import ROOT
from tests.harness.sni import XFCONFD, BusMonitor, ServiceDesktop

MISSING = [t for t in ("xfce4-panel", "dbus-monitor") if shutil.which(t) is None] + (
    [] if Path(XFCONFD).exists() else [XFCONFD]
)
pytestmark = [
    pytest.mark.desktop,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}"),
    pytest.mark.skipif(bool(MISSING), reason=f"xfce4-panel parts missing: {MISSING}"),
]

# Screenshots land here (ignored by git); the ones the README shows are copied to docs/screenshots/.
SCREENSHOTS = ROOT / "tests" / "artifacts"
MENU_UPDATES = ("LayoutUpdated", "ItemsPropertiesUpdated")


@pytest.fixture(scope="module")
def xfce(tmp_path_factory) -> Iterator[ServiceDesktop]:
    with ServiceDesktop(tmp_path_factory.mktemp("xfce")) as d:
        d.start_xfce_panel()
        yield d


def our_item(d: ServiceDesktop) -> str | None:
    return next((i for i in d.sni_items() if "gpu-tray" in d.sni_property(i, "Id")), None)


def icon_centre(d: Desktop) -> tuple[int, int]:
    """The middle of the amber disc in the panel (the top 34 px of the screen)."""
    from PySide6.QtGui import QImage

    image = QImage(str(d.screenshot(d.root / "panel.png", crop=(0, 0, d.size[0], 34))))
    amber = [
        (x, y)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).name() == "#f9a825"
    ]
    assert amber, "no amber icon in the panel"
    xs, ys = [p[0] for p in amber], [p[1] for p in amber]
    return (min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2


def status_window(d: Desktop) -> list[tuple[str, int, int]]:
    return [w for w in top_level_windows(d, "gpu-tray") if w[1] >= 400]


def menu_labels(d: ServiceDesktop, item: str) -> list[str]:
    service = item.split("/")[0]
    out = d.dbus_call(
        service, "/MenuBar", "com.canonical.dbusmenu.GetLayout",
        "int32:0", "int32:-1", "array:string:label",
    )  # fmt: skip
    return re.findall(r'string "label"\s+variant\s+string "([^"]*)"', out)


def about_to_show(d: ServiceDesktop, item: str) -> None:
    d.dbus_call(item.split("/")[0], "/MenuBar", "com.canonical.dbusmenu.AboutToShow", "int32:0")


def test_icon_tooltip_menu_and_left_click_on_xfce4_panel(xfce: ServiceDesktop, tmp_path) -> None:
    with running_app(xfce, tmp_path, "app-xfce", config_text()) as app:
        item = wait_for(lambda: our_item(xfce), 20, "gpu-tray among the panel's SNI items")
        assert item.endswith("/StatusNotifierItem")
        assert 'string "Active"' in xfce.sni_property(item, "Status")
        app.wait_polls("node3", 1)
        tip = wait_for(
            lambda: "node3: 1/4 free" in (t := xfce.sni_property(item, "ToolTip")) and t,
            10,
            "the tooltip with node3",
        )
        assert "gpu-tray (demo): 1 of 6 GPUs free on 3 hosts, 1 failing" in tip
        assert "node9: timeout" in tip

        # Right click: the panel draws the exported menu; it asks for it as it opens.
        about_to_show(xfce, item)
        labels = wait_for(lambda: menu_labels(xfce, item), 10, "the exported menu")
        for want in ("node3 — 1/4 free", "node7 — 0/2 free", "node9 — timeout",
                     "Refresh now", "Pause polling", "History…", "Quit"):  # fmt: skip
            assert want in labels, labels

        # Left click (Activate): the status window, a real top-level window.
        assert status_window(xfce) == []
        xfce.dbus_call(
            item.split("/")[0], "/StatusNotifierItem", "org.kde.StatusNotifierItem.Activate",
            "int32:1000", "int32:10",
        )  # fmt: skip
        wait_for(lambda: status_window(xfce), 10, "the status window after a left click")
        assert "tray icon activated: showing the status window" in app.log()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "xfce4-panel-status-window.png"
        wait_for(  # mapped is not yet painted: wait for its background
            lambda: (
                pixel_colours(xfce.screenshot(shot, crop=(0, 0, 1024, 440)), (200, 380, 1, 1))
                != {"#000000"}
            ),
            10,
            "the status window to be painted",
        )
        # A second left click puts it away again.
        xfce.dbus_call(
            item.split("/")[0], "/StatusNotifierItem", "org.kde.StatusNotifierItem.Activate",
            "int32:1000", "int32:10",
        )  # fmt: skip
        wait_for(lambda: not status_window(xfce), 10, "the status window to close")
        xfce.screenshot(SCREENSHOTS / "xfce4-panel.png", crop=(1024 - 260, 0, 260, 34), zoom=3)

        # Real clicks on the icon the panel draws (amber: a GPU is free, not the watched one).
        x, y = icon_centre(xfce)
        xfce.run("xdotool", "mousemove", str(x), str(y), "click", "1")
        wait_for(lambda: status_window(xfce), 10, "the status window after a click on the icon")
        time.sleep(1)  # two clicks closer than the double-click interval are a double click
        xfce.run("xdotool", "mousemove", str(x), str(y), "click", "1")
        wait_for(lambda: not status_window(xfce), 10, "the status window to close again")
        # Right click: the panel pops up our menu (it shows its own plugin menu instead when
        # the exported one has no entries yet, which is why the menu is kept built).
        xfce.run("xdotool", "mousemove", str(x), str(y), "click", "3")
        [(_, w, _h)] = wait_for(
            lambda: [m for m in top_level_windows(xfce, "Wrapper-2.0") if m[2] > 250],
            10,
            "our menu, drawn by the panel",
        )
        assert w > 300
        xfce.screenshot(SCREENSHOTS / "xfce4-panel-menu.png", crop=(1024 - 600, 0, 600, 420))
        xfce.run("xdotool", "key", "Escape")
        wait_for(
            lambda: not [m for m in top_level_windows(xfce, "Wrapper-2.0") if m[2] > 250],
            10,
            "the menu to close",
        )
        # dbusmenu draws "_" as a mnemonic mark: labels go out with it doubled.
        assert "showing the icon (StatusNotifierItem)" in app.log()
        assert "Scripted cluster (from $GPU__TRAY__DEMO__SCRIPT)" in menu_labels(xfce, item)


def test_opening_an_unchanged_menu_sends_no_menu_updates(xfce: ServiceDesktop, tmp_path) -> None:
    monitor = BusMonitor(
        xfce, "monitor-menu", ["type='signal',interface='com.canonical.dbusmenu'"]
    ).start()
    with running_app(xfce, tmp_path, "app-xfce-menu", config_text()) as app:
        item = wait_for(lambda: our_item(xfce), 20, "gpu-tray among the panel's SNI items")
        app.wait_polls("node9", 2)  # every host has answered: the state settles
        wait_for(lambda: "node3 — 1/4 free" in menu_labels(xfce, item), 10, "the menu")
        # Built at start (again as hosts answer and lines appear), not when it opens.
        built = monitor.count(*MENU_UPDATES)
        # Before: every opening rebuilt everything, 43 to 63 signals each time.
        start = len(monitor.messages())
        for _ in range(5):
            about_to_show(xfce, item)
            app.wait_polls("node3", 1)
        assert monitor.count(*MENU_UPDATES, since=start) == 0
        # When what entries say changes (node3 frees a GPU), only those entries change.
        start = len(monitor.messages())
        app.set_gpu2(True)
        app.wait_polls("node3", 2)
        about_to_show(xfce, item)
        wait_for(lambda: "node3 — 2/4 free" in menu_labels(xfce, item), 10, "the new menu")
        time.sleep(0.5)
        changed = monitor.count(*MENU_UPDATES, since=start)
        print(f"menu updates: at start {built}, 5 unchanged openings 0, a change {changed}")
        assert 1 <= changed <= 6
        assert "GPU 2 on node3 — free now" in menu_labels(xfce, item)


def test_no_notification_service_never_turns_the_icon_into_a_bulb(
    xfce: ServiceDesktop, tmp_path
) -> None:
    # No org.freedesktop.Notifications anywhere on this bus, running or activatable.
    assert "org.freedesktop.Notifications" not in xfce.dbus_call(
        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ListActivatableNames"
    )
    with running_app(xfce, tmp_path, "app-xfce-nonotify", config_text(), gpu2_free=True) as app:
        item = wait_for(lambda: our_item(xfce), 20, "gpu-tray among the panel's SNI items")
        wait_for(lambda: "notification: GPU free on node3" in app.log(), 15, "the notification")
        log = app.log()
        assert (
            "notifications: freedesktop unavailable: NotifyError: no notification service on the"
            " session D-Bus (none running, none activatable)" in log
        )
        assert (
            "notifications: tray balloon failed (NotifyError: tray balloon is not available);"
            " falling back" in log
        )
        # Qt's balloon would have set NeedsAttention for 15 s: it stays Active.
        for _ in range(10):
            assert 'string "Active"' in xfce.sni_property(item, "Status")
            time.sleep(0.3)
