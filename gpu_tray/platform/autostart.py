"""Start at login: an XDG autostart entry, $XDG_CONFIG_HOME/autostart/gpu-tray.desktop.

packaging/gpu-tray-autostart.desktop is the same entry for packagers; this
module writes one whose Exec line starts the gpu-tray that is running now
(the `gpu-tray` script on PATH, or this Python with `-m gpu_tray`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ENTRY_NAME = "gpu-tray.desktop"

# Characters that make the Desktop Entry spec want an Exec argument quoted.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def autostart_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart"


def entry_path() -> Path:
    return autostart_dir() / ENTRY_NAME


def exec_quote(arg: str) -> str:
    """Quote one Exec argument (Desktop Entry spec, "The Exec key"), then escape it as a
    desktop-file string value, so that the launcher gets `arg` back exactly."""
    arg = arg.replace("%", "%%")
    if arg and not (set(arg) & _RESERVED):
        return arg
    quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    # The string-value level: a backslash is written twice.
    return quoted.replace("\\", "\\\\")


def launch_command() -> list[str]:
    """How to start this gpu-tray again at login."""
    script = shutil.which("gpu-tray")
    if script:
        return ["gpu-tray"] if Path(script).parent in _path_dirs() else [script]
    return [sys.executable, "-m", "gpu_tray"]


def _path_dirs() -> set[Path]:
    return {Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p}


def desktop_entry(command: Sequence[str], autostart: bool) -> str:
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Name=gpu-tray",
        "GenericName=GPU availability",
        "Comment=Free GPUs on your servers, in the system tray",
        "Exec=" + " ".join(exec_quote(a) for a in command),
        "Icon=gpu-tray",
        "Terminal=false",
        "Categories=System;Monitor;",
        "Keywords=GPU;CUDA;nvidia-smi;cluster;",
        "StartupNotify=false",
    ]
    if autostart:
        lines += ["X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-Delay=5", "Hidden=false"]
    return "\n".join(lines) + "\n"


def is_enabled() -> bool:
    """An entry exists and is not switched off (`Hidden=true` or GNOME's enabled=false)."""
    try:
        text = entry_path().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    keys = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            keys[key.strip()] = value.strip().lower()
    return keys.get("Hidden") != "true" and keys.get("X-GNOME-Autostart-enabled") != "false"


def enable(command: Sequence[str] | None = None) -> Path:
    """Write the entry atomically. Returns its path."""
    path = entry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ENTRY_NAME}.tmp")
    tmp.write_text(desktop_entry(command or launch_command(), autostart=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def disable() -> None:
    with contextlib.suppress(FileNotFoundError):
        entry_path().unlink()


def set_enabled(enabled: bool) -> bool:
    if enabled:
        enable()
    else:
        disable()
    return is_enabled()
