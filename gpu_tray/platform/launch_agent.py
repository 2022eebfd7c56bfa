"""Start at login on macOS: a LaunchAgent, ~/Library/LaunchAgents/<label>.plist. Qt-free.

launchd reads the folder at login and starts ProgramArguments once (RunAtLoad), in the
user's GUI session (LimitLoadToSessionType Aqua). Enabling does not `launchctl load` it:
that would start a second gpu-tray now, next to the one the user is clicking in.
launchd starts it with a minimal PATH, so the command is always an absolute path.
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_tray.platform.resources import APP_ID

LABEL = APP_ID


def agents_dir(home: Path | None = None) -> Path:
    return (home or Path.home()) / "Library" / "LaunchAgents"


def plist_path(home: Path | None = None) -> Path:
    return agents_dir(home) / f"{LABEL}.plist"


def launch_command() -> list[str]:
    """The `gpu-tray` script by its absolute path (pipx's link keeps working across
    upgrades), else this Python with `-m gpu_tray`."""
    script = shutil.which("gpu-tray")
    if script:
        return [os.path.abspath(script)]
    return [sys.executable, "-m", "gpu_tray"]


def agent(command: Sequence[str]) -> dict[str, Any]:
    return {
        "Label": LABEL,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }


def enable(command: Sequence[str] | None = None, home: Path | None = None) -> Path:
    """Write the plist atomically. Returns its path."""
    path = plist_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(plistlib.dumps(agent(command or launch_command())))
    os.replace(tmp, path)
    return path


def is_enabled(home: Path | None = None) -> bool:
    """Our plist exists, is readable, and is not switched off (`Disabled`)."""
    try:
        doc = plistlib.loads(plist_path(home).read_bytes())
    except (OSError, plistlib.InvalidFileException, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("Label") == LABEL and doc.get("Disabled") is not True


def disable(home: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        plist_path(home).unlink()
