"""The notification backends the tray tries, in order, on this operating system. Qt-free.

- Linux and the BSDs: the freedesktop service over D-Bus (it has action buttons), then
  the tray icon's balloon, then the log.
- macOS and Windows: there is no session D-Bus, and the tray balloon is the native
  notification centre (Qt's QSystemTrayIcon.showMessage posts to Notification Center
  on macOS and a toast on Windows 10/11), so it comes first, then the log.

The app calls this once, at start; the Notifier then walks the list (platform/notify.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from gpu_tray.platform.notify import BackendFactory
from gpu_tray.platform.os_kind import OsKind, os_kind

FREEDESKTOP = "freedesktop"
TRAY_BALLOON = "tray balloon"
LOG = "log"

BACKENDS: dict[OsKind, tuple[str, ...]] = {
    OsKind.XDG: (FREEDESKTOP, TRAY_BALLOON, LOG),
    OsKind.MACOS: (TRAY_BALLOON, LOG),
    OsKind.WINDOWS: (TRAY_BALLOON, LOG),
}


def backend_names(platform: str | None = None) -> tuple[str, ...]:
    """The names of the backends for `platform` (a `sys.platform` value; None: this one)."""
    return BACKENDS[os_kind(platform)]


def notification_chain(
    factories: Mapping[str, BackendFactory], platform: str | None = None
) -> list[tuple[str, BackendFactory]]:
    """The ordered (name, factory) list for `platform`, from the factories the app can
    build. Every chain ends in the log, which cannot fail."""
    names = backend_names(platform)
    missing = [name for name in names if name not in factories]
    if missing:
        raise ValueError(f"no factory for the notification backend(s): {', '.join(missing)}")
    return [(name, factories[name]) for name in names]
