"""Real StatusNotifierItem hosts and notification daemons, for end-to-end tests.

`ServiceDesktop` is the Xvfb desktop of tests/harness/desktop.py with one
difference: its session bus can start services (D-Bus activation) from a
services folder the test fills, as a login session's bus does. xfconfd is
activated that way for xfce4-panel, and a notification daemon can be too.

`BusMonitor` runs `dbus-monitor` on that bus and parses what it printed, so a
test can count the menu updates an SNI item sends or read each Notify call.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.desktop import Desktop, wait_for
from tests.harness.scripted import ROOT

PANEL_XML = ROOT / "tests" / "fixtures" / "desktop" / "xfce4-panel.xml"
WATCHER = "org.kde.StatusNotifierWatcher"
NOTIFICATIONS = "org.freedesktop.Notifications"

XFCONFD = "/usr/lib/x86_64-linux-gnu/xfce4/xfconf/xfconfd"
XFCE4_NOTIFYD = "/usr/lib/x86_64-linux-gnu/xfce4/notifyd/xfce4-notifyd"
NOTIFICATION_DAEMON = "/usr/lib/notification-daemon/notification-daemon"

ACTIVATING_DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def daemon_argv(name: str, dunstrc: Path | None = None) -> list[str]:
    """How to run each notification daemon (none of them needs a shell)."""
    if name == "dunst":
        # dbus-daemon does not search PATH for Exec=.
        return [shutil.which("dunst") or "dunst", *(["-config", str(dunstrc)] if dunstrc else [])]
    if name == "xfce4-notifyd":
        return [XFCE4_NOTIFYD]
    if name == "notification-daemon":
        return [NOTIFICATION_DAEMON]
    raise ValueError(name)


def missing_daemon(name: str) -> str | None:
    exe = daemon_argv(name)[0]
    found = shutil.which(exe) if "/" not in exe else (exe if Path(exe).exists() else None)
    return None if found else exe


class SniQueries:
    """What a panel asks a StatusNotifierItem, through dbus-send on the desktop's bus
    (mixed into a desktop class that has `run`)."""

    run: Any

    def dbus_call(self, dest: str, path: str, method: str, *args: str, timeout: float = 10) -> str:
        return self.run(
            "dbus-send", "--session", "--print-reply", f"--dest={dest}", path, method, *args,
            check=False, timeout=timeout,
        ).stdout  # fmt: skip

    def sni_items(self) -> list[str]:
        """RegisteredStatusNotifierItems: "BUS_NAME/PATH" of each item."""
        out = self.dbus_call(
            WATCHER, "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get",
            f"string:{WATCHER}", "string:RegisteredStatusNotifierItems",
        )  # fmt: skip
        return re.findall(r'string "([^"]+)"', out)

    def sni_property(self, item: str, prop: str) -> str:
        service, _, path = item.partition("/")
        return self.dbus_call(
            service, "/" + path, "org.freedesktop.DBus.Properties.Get",
            "string:org.kde.StatusNotifierItem", f"string:{prop}",
        )  # fmt: skip


class ServiceDesktop(SniQueries, Desktop):
    """Xvfb + a session bus that activates the services written by `add_service`."""

    def __init__(self, root: Path, services: dict[str, list[str]] | None = None, **kw) -> None:
        kw.setdefault("tray", False)
        kw.setdefault("notifications", False)
        super().__init__(root, **kw)
        self.services_dir = root / "dbus-services"
        self.services = dict(services or {})

    def _start_dbus(self) -> None:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        for name, argv in self.services.items():
            self.add_service(name, argv)
        bus_dir = self.root / "bus"
        bus_dir.mkdir(exist_ok=True)
        # Activated services inherit the bus's environment: this desktop's HOME and DISPLAY.
        self._run_bus(ACTIVATING_DBUS_CONFIG.format(dir=bus_dir, services=self.services_dir))

    def add_service(self, name: str, argv: list[str]) -> None:
        """One activatable service (the bus rereads its folder when it changes)."""
        # Exec= is split on spaces by dbus-daemon, not run by a shell.
        assert all(" " not in a for a in argv), argv
        (self.services_dir / f"{name}.service").write_text(
            f"[D-BUS Service]\nName={name}\nExec={' '.join(argv)}\n"
        )
        if "DBUS_SESSION_BUS_ADDRESS" in self.env:  # the bus runs: make it read the folder now
            self.dbus_call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ReloadConfig"
            )

    # -- xfce4-panel as the StatusNotifierItem host --------------------------------------

    def start_xfce_panel(self, timeout: float = 60) -> None:
        channel = self.root / "config" / "xfce4" / "xfconf" / "xfce-perchannel-xml"
        channel.mkdir(parents=True, exist_ok=True)
        shutil.copy(PANEL_XML, channel / "xfce4-panel.xml")
        self.add_service("org.xfce.Xfconf", [XFCONFD])
        self.spawn("xfce4-panel", ["xfce4-panel", "--disable-wm-check"])
        # On 2 busy cores the watcher appears 5-12 s after the panel starts.
        wait_for(lambda: self.bus_name_has_owner(WATCHER), timeout, "xfce4-panel's SNI watcher")
        wait_for(
            lambda: "true" in self.dbus_call(
                WATCHER, "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get",
                f"string:{WATCHER}", "string:IsStatusNotifierHostRegistered",
            ),
            timeout,
            "the panel's SNI host",
        )  # fmt: skip


# -- dbus-monitor -----------------------------------------------------------------------------


@dataclass
class Message:
    kind: str  # "method call", "signal", "method return", "error"
    header: str
    body: str

    @property
    def member(self) -> str:
        m = re.search(r"member=(\S+)", self.header)
        return m.group(1) if m else ""

    def strings(self) -> list[str]:
        return re.findall(r'string "((?:[^"\\]|\\.)*)"', self.body)

    def notify_actions(self) -> list[tuple[str, str]]:
        """A Notify call's actions as (key, label) pairs: its first array of strings."""
        block = re.search(r"\n\s*array \[\n(.*?)\n\s*\]", self.body, re.S)
        flat = re.findall(r'string "([^"]*)"', block.group(1)) if block else []
        return list(zip(flat[::2], flat[1::2], strict=True))


@dataclass
class BusMonitor:
    desktop: Desktop
    name: str
    rules: list[str]
    proc: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> BusMonitor:
        self.proc = self.desktop.spawn(self.name, ["dbus-monitor", "--session", *self.rules])
        # dbus-monitor prints its own NameAcquired once it listens.
        wait_for(lambda: "NameAcquired" in self.desktop.log_of(self.name) or
                 "NameLost" in self.desktop.log_of(self.name), 10, "dbus-monitor")  # fmt: skip
        return self

    def messages(self) -> list[Message]:
        text = self.desktop.log_of(self.name)
        found: list[Message] = []
        for chunk in re.split(r"\n(?=(?:method call|signal|method return|error) )", "\n" + text):
            chunk = chunk.strip("\n")
            if not chunk:
                continue
            header, _, body = chunk.partition("\n")
            kind = next(
                (k for k in ("method call", "method return", "signal", "error")
                 if header.startswith(k + " ")),
                "",
            )  # fmt: skip
            if kind:
                found.append(Message(kind, header, body))
        return found

    def count(self, *members: str, since: int = 0) -> int:
        return sum(1 for m in self.messages()[since:] if m.member in members)
