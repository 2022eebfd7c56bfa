"""The PySide6 6.12 / CPython 3.11 reference-count workaround keeps a busy app alive."""

from __future__ import annotations

import subprocess
import sys

from tests.harness.scripted import ROOT, app_env

# Far more calls than None's and True's reference counts at start-up (a few thousand).
WORKLOAD = """
import sys
{guard}
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


def run(guard: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WORKLOAD.format(guard=guard)],
        cwd=ROOT,
        env=app_env(QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_many_qt_calls_after_importing_gpu_tray_ui() -> None:
    done = run("import gpu_tray.ui")
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr[-2000:]


def test_the_guard_is_idempotent_and_leaves_newer_pythons_alone() -> None:
    from gpu_tray.ui import qt_guard

    before = sys.getrefcount(None)
    qt_guard.protect_singleton_refcounts()
    assert sys.getrefcount(None) - before < 1000  # applied once, at import
