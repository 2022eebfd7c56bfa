"""The tray icon with its tooltip and menu, and the status window when there is no tray.

The view only shows `TrayState` and forwards what the user picks to
`TrayActions`; it never polls, reads files or talks to D-Bus.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from gpu_tray.core.models import utcnow
from gpu_tray.platform.notify import Notification
from gpu_tray.presenter.text import tooltip
from gpu_tray.presenter.tray_state import TrayActions, TrayState
from gpu_tray.ui.tray.icon import paint_icon
from gpu_tray.ui.tray.menu import TrayMenu
from gpu_tray.ui.tray.status_window import StatusWindow

log = logging.getLogger(__name__)

#: How often to look for a system tray that was not there (or went away).
TRAY_RETRY_MS = 5000


def exported_over_dbus() -> bool:
    """Did Qt put the icon on a StatusNotifierItem host (D-Bus) rather than an XEmbed
    tray? Qt registers its item on a connection of its own, named after the process;
    asking that connection is local: no D-Bus round trip on the GUI thread."""
    try:
        from PySide6.QtDBus import QDBusConnection
    except ImportError:  # a Qt without D-Bus has no StatusNotifierItem either
        return False
    for instance in range(1, 5):
        conn = QDBusConnection(f"org.kde.StatusNotifierItem-{os.getpid()}-{instance}")
        if conn.isConnected() and conn.objectRegisteredAt("/StatusNotifierItem") is not None:
            return True
    return False


class TrayView(QObject):
    def __init__(
        self,
        actions: TrayActions,
        *,
        on_history: Callable[[], None] | None = None,
        on_settings: Callable[[], None] | None = None,
        window_icon: QIcon | None = None,
        retry_ms: int = TRAY_RETRY_MS,
        current_state: Callable[[], TrayState] | None = None,
    ) -> None:
        """`current_state`, when given, is asked for the freshest state each time the menu
        opens (instead of the last one passed to `update`)."""
        super().__init__()
        self.actions = actions
        self.state = TrayState()
        self.menu = TrayMenu(actions, current_state or (lambda: self.state))
        self.menu.on_history = on_history
        self.menu.on_settings = on_settings
        self.tray = QSystemTrayIcon()
        self.tray.setObjectName("tray")
        self.tray.setContextMenu(self.menu.menu)
        self.tray.activated.connect(self._activated)
        self.window = StatusWindow(
            self.menu.menu,
            on_refresh=actions.refresh_now,
            on_quit=actions.quit,
            tray_visible=lambda: self.tray_available,
        )
        if window_icon is not None:
            self.window.setWindowIcon(window_icon)
        #: Read by the notifier's thread to decide whether a balloon can be shown.
        self.tray_available = False
        self._fallback = False
        self._tray_checked = False
        self._icon_summary = None
        self._tooltip = ""
        self._retry = QTimer(self)
        self._retry.setInterval(retry_ms)
        self._retry.timeout.connect(self._check_tray)

    # -- hooks for the windows other modules build ----------------------------------------

    def set_history_handler(self, handler: Callable[[], None] | None) -> None:
        """Enable "History…" (menu) and "Open history" (notifications)."""
        self.menu.on_history = handler

    def set_settings_handler(self, handler: Callable[[], None] | None) -> None:
        self.menu.on_settings = handler

    @property
    def on_history(self) -> Callable[[], None] | None:
        return self.menu.on_history

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.update(self.state)
        self._check_tray()
        self._retry.start()

    def stop(self) -> None:
        self._retry.stop()
        self.tray.hide()
        self.window.hide()

    def _check_tray(self) -> None:
        self._tray_checked = True
        available = QSystemTrayIcon.isSystemTrayAvailable()
        if available and not self.tray_available:
            self.tray.show()
            exported = exported_over_dbus()
            log.info("system tray available: showing the icon (%s)",
                     "StatusNotifierItem" if exported else "XEmbed")  # fmt: skip
            self.menu.set_dbus_labels(exported)
            if not self.menu.menu.isVisible():
                self.menu.rebuild()
            if self._fallback:
                self._fallback = False
                self.window.hide()
        elif not available and (self.tray_available or not self._fallback):
            log.warning("no system tray: showing the status window (will look again every %d s)",
                        self._retry.interval() // 1000)  # fmt: skip
            self._fallback = True
            self.show_window()
        self.tray_available = available

    @property
    def fallback(self) -> bool:
        return self._fallback

    def show_window(self) -> None:
        """Bring the status window up (a second `gpu-tray`, or no tray)."""
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # A left click opens (or closes) the status window: a real top-level window
        # works on every host. A popup menu does not: on Wayland a StatusNotifierItem's
        # Activate has no parent window for it to grab from ("Failed to create grabbing
        # popup"). The menu stays on the right click, drawn by the panel itself on SNI.
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            log.info("tray icon activated: %s the status window",
                     "hiding" if self._window_up() else "showing")  # fmt: skip
            if self._window_up():
                self.window.hide()
            else:
                self.show_window()
        elif reason == QSystemTrayIcon.ActivationReason.DoubleClick:
            self.show_window()

    def _window_up(self) -> bool:
        return self.window.isVisible() and not self.window.isMinimized() and not self._fallback

    # -- updates --------------------------------------------------------------------------

    def update(self, state: TrayState) -> None:
        self.state = state
        if state.summary != self._icon_summary:
            self.tray.setIcon(paint_icon(state.summary))
            self._icon_summary = state.summary
        text = tooltip(
            state.snapshots, state.summary, state.thresholds_for, utcnow(), state.title, state.notes
        )
        if text != self._tooltip:
            self.tray.setToolTip(text)
            self._tooltip = text
        self.window.set_state(state)
        # Kept built, not only filled when it opens: an SNI host (xfce4-panel) pops up the
        # exported menu only if it already has entries, else it shows its own panel menu.
        # Cheap: only what changed is touched. Not while Qt shows it (XEmbed): it is
        # brought up to date when it opens next. Not before the tray was looked for: how
        # labels are written depends on which kind of tray it is.
        if self._tray_checked and not self.menu.menu.isVisible():
            self.menu.rebuild()

    @property
    def tooltip_text(self) -> str:
        return self._tooltip

    def show_message(self, note: Notification) -> None:
        """The tray's own balloon: the fallback when no notification service answers."""
        self.tray.showMessage(
            note.summary, note.body, QSystemTrayIcon.MessageIcon.Information, 15000
        )
