"""Keep PySide6 6.12 on CPython 3.11 from freeing None, True and False.

PySide6 6.12.0 returns None from Qt methods that return nothing, and True or
False from some that return a bool (`Signal.emit`), without taking a
reference. CPython 3.12+ does not count references to these (they are
immortal); 3.11 (Debian 12's Python) does, so each call takes one away, and a
few thousand calls in (a plot repaints a few hundred times) CPython frees None
and aborts: "Fatal Python error: none_dealloc" (or bool_dealloc). A reference
count no program can use up makes that harmless; these objects are never
freed anyway. The tray's `gpu_tray.ui` guard covers None; this one also
covers the booleans, and is safe to run after it, or twice.
"""

from __future__ import annotations

import ctypes
import sys

_BUFFER = 1 << 60


def protect_singletons() -> None:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for obj in (None, True, False):
        # ob_refcnt is the first field of every object on CPython 3.11 (non-debug builds).
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        if refcnt.value < _BUFFER // 2:
            refcnt.value += _BUFFER
