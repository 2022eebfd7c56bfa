"""Screenshots of the dialogs on a real X server (Xvfb), saved to tests/artifacts/ for a
person to look at. The test checks that each one was drawn, not how it looks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.desktop

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
SHOTS = (
    "settings-hosts.png",
    "settings-polling.png",
    "settings-channels.png",
    "trust-unknown.png",
    "trust-changed.png",
    "first-run.png",
    "password-prompt.png",
)


@pytest.fixture
def xvfb() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write),
            "-screen",
            "0",
            "1280x1024x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        display = f.readline().strip()
    try:
        if not display:
            pytest.fail("Xvfb did not report a display number")
        yield f":{display}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_dialog_screenshots(xvfb: str, tmp_path: Path) -> None:
    env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run(
        [sys.executable, "-m", "tests.credentials.shoot_dialogs", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    for name in SHOTS:
        image = QImage(str(tmp_path / name))
        assert not image.isNull(), name
        assert image.width() >= 400 and image.height() >= 150, (name, image.size())
        # Drawn, not blank: a dialog has text, frames and buttons in several colours.
        colours = {
            image.pixel(x, y)
            for x in range(0, image.width(), 7)
            for y in range(0, image.height(), 7)
        }
        assert len(colours) > 10, name
        shutil.copyfile(tmp_path / name, ARTIFACTS / name)
