"""Work around a PySide6 6.12 reference-count bug on CPython 3.11.

PySide6 6.12.0 hands back `None` from every Qt method that returns nothing,
and `True` from every `Signal.emit()`, without taking a reference to it.
CPython 3.12 and later do not count references to these singletons (they are
immortal), but 3.11, Debian 12's Python, does: each such call takes one
reference away, and after a few thousand calls (painting a few icons,
emitting a signal per poll) CPython frees the singleton and aborts with
"Fatal Python error: none_dealloc" (or "bool_dealloc"). Giving them a
reference count no program can use up makes that harmless; they are never
freed anyway. PySide6 6.11.3 does not have the bug.
"""

from __future__ import annotations

import ctypes
import sys

_BUFFER = 1 << 60
_done = False


def protect_singleton_refcounts() -> None:
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    # ob_refcnt is the first field of every object on CPython 3.11 (non-debug builds).
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _BUFFER
    _done = True
