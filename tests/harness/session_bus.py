"""A private session D-Bus (no service activation), and a stand-in notification service
for unit tests of our D-Bus client: it records every call and sends the signals a test
asks for. The real daemon (dunst) is used by the desktop tests."""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from tests.harness.desktop import DBUS_CONFIG

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


def have_dbus() -> bool:
    return shutil.which("dbus-daemon") is not None


@contextlib.contextmanager
def private_bus(root: Path) -> Iterator[str]:
    """Start a dbus-daemon; yields its address."""
    (root / "bus").mkdir(parents=True, exist_ok=True)
    conf = root / "dbus.conf"
    conf.write_text(DBUS_CONFIG.format(dir=root / "bus"))
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().decode().strip()
    finally:
        proc.terminate()
        proc.wait(5)


class FakeNotificationService(threading.Thread):
    def __init__(self, address: str, capabilities: list[str]) -> None:
        super().__init__(name="fake-notifications", daemon=True)
        self.capabilities = capabilities
        self.calls: list[tuple[Any, ...]] = []
        self._outbox: queue.Queue[tuple[str, str, tuple]] = queue.Queue()
        self._halt = threading.Event()
        self.conn = open_dbus_connection(address)
        self.conn.send_and_get_reply(message_bus.RequestName(SERVICE))
        self.unique_name = self.conn.unique_name

    def emit(self, member: str, signature: str, body: tuple) -> None:
        self._outbox.put((member, signature, body))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.conn.close()

    def run(self) -> None:
        emitter = DBusAddress(PATH, interface=SERVICE)
        while not self._halt.is_set():
            while not self._outbox.empty():
                member, signature, body = self._outbox.get()
                self.conn.send(new_signal(emitter, member, signature, body))
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            if msg.header.message_type is not MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            if member == "GetServerInformation":
                reply = new_method_return(msg, "ssss", ("fake", "gpu-tray tests", "1.0", "1.2"))
            elif member == "GetCapabilities":
                reply = new_method_return(msg, "as", (self.capabilities,))
            elif member == "Notify":
                self.calls.append(msg.body)
                reply = new_method_return(msg, "u", (len(self.calls),))
            else:
                reply = new_method_return(msg)
            self.conn.send(reply)
