"""Where history lives: platformdirs' user data dir (`$XDG_DATA_HOME/gpu-tray/` on Linux)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "gpu-tray"


def history_path(demo: bool = False) -> Path:
    """The history database. The demo cluster keeps its own, so simulated hosts never
    mix with real history. `GPU_TRAY_HISTORY` overrides both (tests, benchmarks)."""
    override = os.environ.get("GPU_TRAY_HISTORY")
    if override:
        return Path(override)
    name = "history-demo.sqlite3" if demo else "history.sqlite3"
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / name
