"""org.freedesktop.Notifications over D-Bus, through jeepney.

PySide6's QtDBus cannot send the `u` arguments `Notify` takes, and the call
must not run on the GUI thread anyway: this backend is built and used on the
notifier's thread. A listener thread of its own receives `ActionInvoked` and
`NotificationClosed` and hands the action to the app's handler (which posts
it to the GUI thread). Signals are only believed when they come from the
connection that owns the notification service and name a notification we sent.

A service that is installed but not running yet (D-Bus activatable: the usual
case at login, and with mako) is called all the same: the bus starts it. Only
when nothing owns the name and nothing can be activated does the chain fall back.
"""

from __future__ import annotations

import contextlib
import html
import logging
import queue
import threading
from collections import OrderedDict
from typing import Any

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.threading import DBusRouter, Proxy, open_dbus_connection

from gpu_tray.platform.notify import ActionHandler, Notification, NotifyError

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
CALL_TIMEOUT_S = 5.0
#: A call that makes the bus start the daemon waits as long as the bus itself does (25 s).
ACTIVATION_TIMEOUT_S = 25.0
#: Servers that draw the "default" action as a button or a menu entry of its own
#: (GetServerInformation's name, lower case). To them a second action with the same label
#: would be a second, identical button; the others hide "default" (a click on the bubble).
DRAWS_DEFAULT_ACTION = frozenset({"xfce notify daemon", "dunst", "mako"})
#: Remember this many sent notifications for their actions; older ones are gone anyway.
KEEP_SENT = 64

_ADDRESS = DBusAddress(PATH, bus_name=SERVICE, interface=SERVICE)


class FreedesktopBackend:
    name = "freedesktop"

    def __init__(
        self,
        on_action: ActionHandler,
        app_name: str = "gpu-tray",
        app_icon: str = "",
        desktop_entry: str = "gpu-tray",
    ) -> None:
        self._on_action = on_action
        self._app_name = app_name
        self._app_icon = app_icon
        self._desktop_entry = desktop_entry
        self._sent: OrderedDict[int, Notification] = OrderedDict()
        self._lock = threading.Lock()
        self._signals: queue.Queue[Any] = queue.Queue(maxsize=1000)
        try:
            self._conn = open_dbus_connection("SESSION", auth_timeout=CALL_TIMEOUT_S)
        except KeyError:
            raise NotifyError("no session D-Bus (DBUS_SESSION_BUS_ADDRESS is not set)") from None
        except Exception as exc:
            raise NotifyError(f"cannot connect to the session D-Bus: {exc}") from None
        self._router = DBusRouter(self._conn)
        try:
            self._bus = Proxy(message_bus, self._router, timeout=CALL_TIMEOUT_S)
            self._owner = self._service_owner()
            # When nobody owns the name yet, this call is what makes the bus start the daemon.
            name, _vendor, version, _spec = self._call(
                "GetServerInformation", timeout=ACTIVATION_TIMEOUT_S
            )
            if not self._owner:
                self._owner = self._service_owner()
                log.info("notifications: D-Bus started %s for us", name)
            self.capabilities = frozenset(self._call("GetCapabilities")[0])
            self.server = f"{name} {version}"
            self.server_name = name
            for member in ("ActionInvoked", "NotificationClosed"):
                rule = MatchRule(type="signal", interface=SERVICE, path=PATH, member=member)
                self._bus.AddMatch(rule)
                self._router.filter(rule, queue=self._signals)
        except BaseException:
            self._shutdown()
            raise
        self.name = f"freedesktop ({self.server}; {', '.join(sorted(self.capabilities))})"
        self._listener = threading.Thread(target=self._listen, name="notify-signals", daemon=True)
        self._listener.start()

    # -- calls ----------------------------------------------------------------------------

    def _service_owner(self) -> str:
        """The connection that owns the service now; "" when none does but the bus can
        start one. NotifyError when nothing can serve notifications."""
        try:
            if self._bus.NameHasOwner(SERVICE)[0]:
                return self._bus.GetNameOwner(SERVICE)[0]
            activatable = self._bus.ListActivatableNames()[0]
        except Exception as exc:
            raise NotifyError(f"no notification service on the session D-Bus ({exc})") from None
        if SERVICE in activatable:
            return ""
        raise NotifyError(
            "no notification service on the session D-Bus (none running, none activatable)"
        )

    def _call(
        self,
        method: str,
        signature: str | None = None,
        body: tuple = (),
        timeout: float = CALL_TIMEOUT_S,
    ) -> tuple:
        msg = new_method_call(_ADDRESS, method, signature, body)
        try:
            reply = self._router.send_and_get_reply(msg, timeout=timeout)
        except TimeoutError:
            raise NotifyError(f"{method}: no reply within {timeout:g} s") from None
        except Exception as exc:
            raise NotifyError(f"{method}: {exc}") from None
        if reply.header.message_type is MessageType.error:
            err = reply.header.fields.get(HeaderFields.error_name, "error")
            detail = reply.body[0] if reply.body else ""
            raise NotifyError(f"{method}: {err}: {detail}")
        return reply.body

    def send(self, note: Notification) -> None:
        # The service may have been restarted (a new owner): signals come from the new one.
        self._owner = self._service_owner()
        body = note.body
        if "body-markup" in self.capabilities:
            body = html.escape(body, quote=False)
        actions: list[str] = []
        if "actions" in self.capabilities:
            for key, label in actions_for(note.actions, self.server_name):
                actions += [key, label]
        hints: dict[str, tuple[str, Any]] = {
            "urgency": ("y", 1),
            "desktop-entry": ("s", self._desktop_entry),
        }
        if "sound" in self.capabilities:
            if note.sound:
                hints["sound-name"] = ("s", "message-new-instant")
            else:
                hints["suppress-sound"] = ("b", True)
        (nid,) = self._call(
            "Notify",
            "susssasa{sv}i",
            (self._app_name, 0, self._app_icon, note.summary, body, actions, hints, -1),
            timeout=CALL_TIMEOUT_S if self._owner else ACTIVATION_TIMEOUT_S,
        )
        if not self._owner:  # the bus started the daemon for this call: its signals count
            self._owner = self._service_owner()
        with self._lock:
            self._sent[nid] = note
            while len(self._sent) > KEEP_SENT:
                self._sent.popitem(last=False)
        log.debug("notification %d sent: %s", nid, note.summary)

    # -- signals --------------------------------------------------------------------------

    def _listen(self) -> None:
        while True:
            msg = self._signals.get()
            if msg is None:
                return
            try:
                self._handle(msg)
            except Exception:
                log.exception("handling %s", msg.header.fields.get(HeaderFields.member))

    def _handle(self, msg: Any) -> None:
        sender = msg.header.fields.get(HeaderFields.sender)
        if sender != self._owner:
            log.debug("ignoring a notification signal from %s (not the service)", sender)
            return
        member = msg.header.fields.get(HeaderFields.member)
        if member == "ActionInvoked":
            nid, key = msg.body
            with self._lock:
                note = self._sent.get(nid)
            if note is not None:
                log.info("notification %d: action %r", nid, key)
                self._on_action(note, key)
        elif member == "NotificationClosed":
            nid = msg.body[0]
            with self._lock:
                self._sent.pop(nid, None)

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(queue.Full):
            self._signals.put_nowait(None)
        try:
            self._router.close()
        finally:
            self._conn.close()


def actions_for(actions: tuple[tuple[str, str], ...], server_name: str) -> list[tuple[str, str]]:
    """The actions to offer this server: one button per label on every daemon.

    Ours come as ("default", label) plus the same label under its own key, so that a
    daemon that hides "default" (GNOME, KDE, notification-daemon) still shows a button.
    A daemon that draws "default" itself gets it only once."""
    if server_name.strip().lower() not in DRAWS_DEFAULT_ACTION:
        return list(actions)
    default = next((label for key, label in actions if key == "default"), None)
    return [(k, label) for k, label in actions if k == "default" or label != default]
