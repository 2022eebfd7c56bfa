"""Is a StatusNotifierItem host (KDE, GNOME's AppIndicator, xfce4-panel, waybar) on the bus?

Qt puts the tray icon there when one is. Its balloon is then not a balloon at
all: Qt sends it to org.freedesktop.Notifications itself and marks the item
NeedsAttention, so the panel shows a light bulb instead of the GPU count for
15 s. The notification chain asks this (off the GUI thread) before it uses
the balloon as a fallback.
"""

from __future__ import annotations

import logging

from jeepney import DBusAddress, MessageType, Properties
from jeepney.io.blocking import open_dbus_connection

log = logging.getLogger(__name__)

WATCHER = DBusAddress(
    "/StatusNotifierWatcher",
    bus_name="org.kde.StatusNotifierWatcher",
    interface="org.kde.StatusNotifierWatcher",
)


def host_registered(timeout: float = 2.0) -> bool:
    """True when a StatusNotifierWatcher answers and says a host is registered.

    Blocks up to `timeout`: call it from a worker thread, never the GUI's."""
    try:
        with open_dbus_connection("SESSION", auth_timeout=timeout) as conn:
            msg = Properties(WATCHER).get("IsStatusNotifierHostRegistered")
            reply = conn.send_and_get_reply(msg, timeout=timeout)
    except Exception as exc:  # no bus, no watcher, a slow one: no SNI host to spoil
        log.debug("no StatusNotifierItem host: %s", exc)
        return False
    if reply.header.message_type is MessageType.error or not reply.body:
        return False
    _signature, value = reply.body[0]
    return bool(value)
