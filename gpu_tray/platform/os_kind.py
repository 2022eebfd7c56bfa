"""Which desktop conventions this operating system follows. Qt-free.

Decided once from `sys.platform`; every function that depends on it also takes the
platform string, so tests can ask what macOS or Windows would get on any machine.
"""

from __future__ import annotations

import sys
from enum import StrEnum


class OsKind(StrEnum):
    #: Linux and the BSDs: freedesktop.org (XDG autostart, D-Bus notifications).
    XDG = "xdg"
    MACOS = "macos"
    WINDOWS = "windows"


def os_kind(platform: str | None = None) -> OsKind:
    """`platform` is a `sys.platform` value ("linux", "darwin", "win32", "freebsd14"...);
    None means this machine's."""
    name = sys.platform if platform is None else platform
    if name == "darwin":
        return OsKind.MACOS
    if name == "win32":
        return OsKind.WINDOWS
    # Anything else (the BSDs, cygwin) gets the freedesktop conventions, the only ones
    # a desktop there may follow.
    return OsKind.XDG
