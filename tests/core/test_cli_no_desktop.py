"""Without a desktop session the tray and the history window say so (Qt would abort)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--demo"],
            "gpu-tray: the tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not "
            "set). Without one, try `gpu-tray status` or `gpu-tray wait`.\n",
        ),
        (
            ["history", "--demo"],
            "gpu-tray: the history window needs a desktop session (DISPLAY or WAYLAND_DISPLAY)\n",
        ),
    ],
)
def test_no_display_is_a_usage_error(argv: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "gpu_tray", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)
