"""Work around a PySide6 6.12 reference-count bug on CPython 3.11.

PySide6 6.12.0 hands back `None` from every Qt method that returns nothing
without taking a reference to it. CPython 3.12 and later do not count
references to None (it is immortal), but 3.11, Debian 12's Python, does:
each such call takes one reference away, and after a few thousand calls
(painting a few icons, rebuilding a menu) CPython frees None and aborts with
"Fatal Python error: none_dealloc". Giving None a reference count no program
can use up makes that harmless; None is never freed anyway.
"""

from __future__ import annotations

import ctypes
import sys

_BUFFER = 1 << 60
_done = False


def protect_none_refcount() -> None:
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    # ob_refcnt is the first field of every object on CPython 3.11 (non-debug builds).
    ctypes.c_ssize_t.from_address(id(None)).value += _BUFFER
    _done = True
