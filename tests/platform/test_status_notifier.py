"""Is a StatusNotifierItem host on the bus? Asked of a stand-in watcher on a private bus
(the real ones, xfce4-panel and waybar, are in tests/desktop/)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from gpu_tray.platform.status_notifier import host_registered
from tests.harness.session_bus import have_dbus, private_bus

pytestmark = pytest.mark.skipif(not have_dbus(), reason="dbus-daemon is not installed")


@pytest.fixture
def bus(tmp_path: Path, monkeypatch) -> Iterator[str]:
    with private_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


class Watcher(threading.Thread):
    """Owns org.kde.StatusNotifierWatcher and answers Properties.Get for one property."""

    def __init__(self, address: str, registered: bool | None) -> None:
        super().__init__(daemon=True)
        self.registered = registered
        self.conn = open_dbus_connection(address)
        self.conn.send_and_get_reply(message_bus.RequestName("org.kde.StatusNotifierWatcher"))
        self.asked: list[tuple] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            if msg.header.message_type is not MessageType.method_call:
                continue
            self.asked.append((msg.header.fields.get(HeaderFields.member), msg.body))
            if self.registered is None:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "s", ("no",))
            else:
                reply = new_method_return(msg, "v", (("b", self.registered),))
            self.conn.send(reply)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.conn.close()


@pytest.mark.parametrize(("registered", "expected"), [(True, True), (False, False), (None, False)])
def test_asks_the_watcher_whether_a_host_is_registered(
    bus: str, registered: bool | None, expected: bool
) -> None:
    watcher = Watcher(bus, registered)
    watcher.start()
    try:
        assert host_registered() is expected
        assert watcher.asked == [
            ("Get", ("org.kde.StatusNotifierWatcher", "IsStatusNotifierHostRegistered"))
        ]
    finally:
        watcher.stop()


def test_no_watcher_on_the_bus(bus: str) -> None:
    assert host_registered() is False


def test_no_session_bus(monkeypatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert host_registered() is False
