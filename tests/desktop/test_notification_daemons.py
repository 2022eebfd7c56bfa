"""Notifications on three real daemons (dunst, xfce4-notifyd, notification-daemon), each
already running and started by D-Bus activation, as at login or with mako.

The real gpu-tray process sends them (the scripted cluster frees the watched
GPU); dbus-monitor shows each Notify and its actions; a click on the daemon's
own "Copy command" button (or, on dunst, on the notification) copies the command.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.desktop.test_tray_desktop import (
    COMMAND,
    config_text,
    read_clipboard,
    running_app,
    top_level_windows,
)
from tests.harness.desktop import missing_tools, wait_for
from tests.harness.scripted import ROOT
from tests.harness.sni import (
    NOTIFICATIONS,
    XFCONFD,
    BusMonitor,
    ServiceDesktop,
    daemon_argv,
    missing_daemon,
)

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}"),
    pytest.mark.skipif(shutil.which("dbus-monitor") is None, reason="dbus-monitor missing"),
]

# Screenshots land here (ignored by git); the ones the README shows are copied to docs/screenshots/.
SCREENSHOTS = ROOT / "tests" / "artifacts"
DAEMONS = {
    # name: (WM_CLASS, server name, the actions it should get, the one its button reports)
    "dunst": ("Dunst", "dunst", [("default", "Copy command")], "default"),
    "xfce4-notifyd": (
        "Xfce4-notifyd",
        "Xfce Notify Daemon",
        [("default", "Copy command")],
        "default",
    ),
    # It hides "default" (a click on the bubble): the button comes from "copy".
    "notification-daemon": (
        "Notification-daemon",
        "Notification Daemon",
        [("default", "Copy command"), ("copy", "Copy command")],
        "copy",
    ),
}
REST = [("history", "Open history"), ("snooze", "Snooze 1 h")]


def first_button(png: Path, width: int, height: int) -> tuple[int, int]:
    """Where the leftmost action sits in a notification window's screenshot: the first
    thing drawn in its lower part (a button's edge, or a flat button's label), below the
    app's icon and inside the rounded border."""
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    background = image.pixelColor(width - 12, height - 6).lightness()
    ink = [
        (x, y)
        for y in range(int(height * 0.6), height - 12)
        for x in range(16, width - 16)
        if abs(image.pixelColor(x, y).lightness() - background) > 40
    ]
    assert ink, f"nothing drawn in the lower part of {png}"
    left = min(x for x, _ in ink)
    rows = sorted(y for x, y in ink if x < left + 60)
    return left + 25, rows[len(rows) // 2]


@pytest.mark.parametrize("mode", ["activated", "running"])
@pytest.mark.parametrize("daemon", list(DAEMONS))
def test_one_copy_command_action_that_copies(daemon: str, mode: str, tmp_path: Path) -> None:
    if missing := missing_daemon(daemon):
        pytest.skip(f"{daemon} is not installed ({missing})")
    wm_class, server, copy_actions, button = DAEMONS[daemon]
    with ServiceDesktop(tmp_path / "desk") as d:
        if Path(XFCONFD).exists():  # xfce4-notifyd reads its settings through xfconfd
            d.add_service("org.xfce.Xfconf", [XFCONFD])
        argv = daemon_argv(daemon, d.write_dunst_config())
        if mode == "activated":
            d.add_service(NOTIFICATIONS, argv)
            wait_for(
                lambda: NOTIFICATIONS in d.dbus_call(
                    "org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.ListActivatableNames",
                ),
                10,
                "the bus to see the service file",
            )  # fmt: skip
            assert not d.bus_name_has_owner(NOTIFICATIONS)
        else:
            d.spawn(daemon, argv)
            wait_for(lambda: d.bus_name_has_owner(NOTIFICATIONS), 20, f"{daemon} on the bus")
        monitor = BusMonitor(
            d, "monitor", [f"type='method_call',interface='{NOTIFICATIONS}',member='Notify'"]
        ).start()
        with running_app(d, tmp_path / "app", "app", config_text(), gpu2_free=True) as app:
            [call] = wait_for(
                lambda: [m for m in monitor.messages() if m.member == "Notify"], 30, "Notify"
            )
            log = app.log()
            assert f"notifications: using freedesktop ({server} " in log
            assert "tray balloon" not in log
            if mode == "activated":
                assert f"notifications: D-Bus started {server} for us" in log
            assert call.notify_actions() == copy_actions + REST
            labels = [label for _key, label in call.notify_actions()]
            [nid] = wait_for(
                lambda: re.findall(r"notification (\d+) sent: GPU free on node3", app.log()),
                10,
                "the reply to Notify",
            )

            bubbles: list = []

            def settled() -> list:
                # A bubble grows while it lays out: the same size twice in a row.
                now = [x for x in top_level_windows(d, wm_class) if x[1] > 100]
                before, bubbles[:] = list(bubbles), now
                return now if now and now == before else []

            [(wid, w, h)] = wait_for(settled, 15, "the bubble", interval=0.3)
            x, y, _, _ = d.window_geometry(wid)
            shot = d.screenshot(tmp_path / "bubble.png", crop=(x, y, w, h))
            if daemon == "dunst":
                bx, by = w // 2, h // 2  # dunst draws no buttons: a click runs "default"
            else:
                bx, by = first_button(shot, w, h)
            if mode == "running" and daemon == "xfce4-notifyd":
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                d.screenshot(SCREENSHOTS / "xfce4-notifyd.png", crop=(x - 8, y - 8, w + 16, h + 16))
            d.run("xdotool", "mousemove", str(x + bx), str(y + by), "click", "1")
            wait_for(lambda: "copied to the clipboard" in app.log(), 10, "the copy")
            assert read_clipboard(d) == COMMAND
            # The daemon reported the click as the action labelled Copy command, once.
            assert re.findall(rf"notification {nid}: action '([^']*)'", app.log()) == [button]
            assert dict(call.notify_actions())[button] == "Copy command"
            assert labels.count("Copy command") == len(copy_actions)
