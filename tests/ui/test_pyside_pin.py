"""The PySide6 we pin keeps a busy app alive.

PySide6 6.12.0 on CPython 3.11 (Debian 12's Python) drops a reference to
`None` on every Qt call that returns nothing and to `True` on every
`Signal.emit()`; after a few thousand calls the interpreter aborts with
"Fatal Python error: none_dealloc". pyproject.toml pins 6.11.x for that
reason; this test fails on a PySide6 with the bug.
"""

from __future__ import annotations

import subprocess
import sys

from tests.harness.scripted import ROOT, app_env

# Far more calls than None's and True's reference counts at start-up (a few thousand).
WORKLOAD = """
from PySide6.QtCore import QObject, Signal
class O(QObject):
    ping = Signal(object)
o = O()
o.ping.connect(lambda _: None)
for _ in range(50_000):
    o.setObjectName("x")   # returns None
    o.ping.emit(1)         # returns True
print("alive")
"""


def test_many_qt_calls_do_not_exhaust_singleton_refcounts() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD],
        cwd=ROOT,
        env=app_env(QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr[-2000:]
