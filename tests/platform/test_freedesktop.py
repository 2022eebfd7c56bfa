"""Our org.freedesktop.Notifications client, against a stand-in service on a private bus:
what Notify gets for each server capability, and which signals are believed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jeepney import DBusAddress, new_signal
from jeepney.io.blocking import open_dbus_connection

from gpu_tray.platform.freedesktop import FreedesktopBackend, actions_for
from gpu_tray.platform.notify import Notification, NotifyError
from tests.harness.session_bus import PATH, SERVICE, FakeNotificationService, have_dbus, private_bus

pytestmark = pytest.mark.skipif(not have_dbus(), reason="dbus-daemon is not installed")

NOTE = Notification(
    "GPU free on node3",
    "node3: GPU 2 (A100 80GB) is free, 79 GiB <& more>",
    (("default", "Copy command"), ("copy", "Copy command"), ("snooze", "Snooze 1 h")),
    sound=True,
    payload="firings",
)


@pytest.fixture
def bus(tmp_path: Path, monkeypatch) -> Iterator[str]:
    with private_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


def service(address: str, caps: list[str]) -> FakeNotificationService:
    svc = FakeNotificationService(address, caps)
    svc.start()
    return svc


class Actions:
    def __init__(self) -> None:
        self.got: list[tuple[object, str]] = []
        self.event = threading.Event()

    def __call__(self, note: Notification, key: str) -> None:
        self.got.append((note.payload, key))
        self.event.set()


def wait(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_notify_with_every_capability(bus: str) -> None:
    svc = service(bus, ["actions", "body", "body-markup", "sound"])
    backend = FreedesktopBackend(Actions(), app_icon="/icons/gpu-tray.svg")
    try:
        assert backend.name == "freedesktop (fake 1.0; actions, body, body-markup, sound)"
        backend.send(NOTE)
        [call] = svc.calls
        app, replaces, icon, summary, body, actions, hints, timeout = call
        assert (app, replaces, icon, summary, timeout) == (
            "gpu-tray",
            0,
            "/icons/gpu-tray.svg",
            "GPU free on node3",
            -1,
        )
        assert body == "node3: GPU 2 (A100 80GB) is free, 79 GiB &lt;&amp; more&gt;"
        assert actions == [
            "default",
            "Copy command",
            "copy",
            "Copy command",
            "snooze",
            "Snooze 1 h",
        ]
        assert hints == {
            "urgency": ("y", 1),
            "desktop-entry": ("s", "gpu-tray"),
            "sound-name": ("s", "message-new-instant"),
        }
        quiet = Notification("s", "b", sound=False)
        backend.send(quiet)
        assert svc.calls[1][6]["suppress-sound"] == ("b", True)
    finally:
        backend.close()
        svc.stop()


def test_notify_to_a_plain_server(bus: str) -> None:
    svc = service(bus, ["body"])
    backend = FreedesktopBackend(Actions())
    try:
        backend.send(NOTE)
        [call] = svc.calls
        assert call[4] == NOTE.body  # no markup: sent as it is
        assert call[5] == []  # no actions offered to a server without them
        assert call[6] == {"urgency": ("y", 1), "desktop-entry": ("s", "gpu-tray")}
    finally:
        backend.close()
        svc.stop()


def test_actions_from_the_service_reach_the_handler_and_others_are_ignored(bus: str) -> None:
    svc = service(bus, ["actions", "body"])
    actions = Actions()
    backend = FreedesktopBackend(actions)
    try:
        backend.send(NOTE)
        # Someone else on the bus forging the signal is not believed.
        other = open_dbus_connection(bus)
        other.send(
            new_signal(DBusAddress(PATH, interface=SERVICE), "ActionInvoked", "us", (1, "copy"))
        )
        # Nor is an action for a notification we did not send.
        svc.emit("ActionInvoked", "us", (99, "copy"))
        svc.emit("ActionInvoked", "us", (1, "snooze"))
        assert actions.event.wait(5)
        assert actions.got == [("firings", "snooze")]
        # Once closed, its actions are forgotten.
        svc.emit("NotificationClosed", "uu", (1, 2))
        svc.emit("ActionInvoked", "us", (1, "copy"))
        backend.send(NOTE)
        svc.emit("ActionInvoked", "us", (2, "default"))
        wait(lambda: len(actions.got) == 2)
        assert actions.got == [("firings", "snooze"), ("firings", "default")]
        other.close()
    finally:
        backend.close()
        svc.stop()


def test_no_service_on_the_bus(bus: str) -> None:
    with pytest.raises(NotifyError) as err:
        FreedesktopBackend(Actions())
    assert str(err.value) == (
        "no notification service on the session D-Bus (none running, none activatable)"
    )


def test_no_session_bus_at_all(monkeypatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(NotifyError) as err:
        FreedesktopBackend(Actions())
    assert str(err.value) == "no session D-Bus (DBUS_SESSION_BUS_ADDRESS is not set)"


ACTIONS = (
    ("default", "Copy command"),
    ("copy", "Copy command"),
    ("history", "Open history"),
    ("snooze", "Snooze 1 h"),
)


@pytest.mark.parametrize("server", ["Xfce Notify Daemon", "dunst", "mako"])
def test_a_server_that_draws_the_default_action_gets_copy_once(server: str) -> None:
    assert actions_for(ACTIONS, server) == [
        ("default", "Copy command"),
        ("history", "Open history"),
        ("snooze", "Snooze 1 h"),
    ]


@pytest.mark.parametrize("server", ["Notification Daemon", "gnome-shell", "Plasma", "fake"])
def test_a_server_that_hides_the_default_action_gets_a_copy_button(server: str) -> None:
    assert actions_for(ACTIONS, server) == list(ACTIONS)


def test_dropping_the_duplicate_keeps_other_actions_and_needs_a_default() -> None:
    assert actions_for((("snooze", "Snooze 1 h"),), "dunst") == [("snooze", "Snooze 1 h")]
