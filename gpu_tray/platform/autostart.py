"""Start at login, with each operating system's own mechanism, chosen at call time:

- Linux and the BSDs: an XDG autostart entry, $XDG_CONFIG_HOME/autostart/gpu-tray.desktop
  (below; packaging/gpu-tray-autostart.desktop is the same entry for packagers);
- macOS: a LaunchAgent plist (platform/launch_agent.py);
- Windows: the per-user Run key, or a shortcut in the Startup folder
  (platform/windows_startup.py).

Each writes a command that starts the gpu-tray running now (the `gpu-tray` script,
or this Python with `-m gpu_tray`). `platform` arguments take a `sys.platform` value
(None: this machine's), so tests can ask for another system's behaviour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from gpu_tray.platform import launch_agent, windows_startup
from gpu_tray.platform.os_kind import OsKind, os_kind

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


def launch_command(platform: str | None = None) -> list[str]:
    """How to start this gpu-tray again at login."""
    kind = os_kind(platform)
    if kind is OsKind.MACOS:
        return launch_agent.launch_command()
    if kind is OsKind.WINDOWS:
        return windows_startup.launch_command()
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


def location(platform: str | None = None) -> str:
    """Where the start-at-login setting lives, for the log."""
    kind = os_kind(platform)
    if kind is OsKind.MACOS:
        return str(launch_agent.plist_path())
    if kind is OsKind.WINDOWS:
        return windows_startup.location()
    return str(entry_path())


def is_enabled(platform: str | None = None) -> bool:
    """Whether gpu-tray starts at the next login."""
    kind = os_kind(platform)
    if kind is OsKind.MACOS:
        return launch_agent.is_enabled()
    if kind is OsKind.WINDOWS:
        return windows_startup.is_enabled()
    return _xdg_is_enabled()


def _xdg_is_enabled() -> bool:
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


def enable(command: Sequence[str] | None = None, platform: str | None = None) -> Path | str:
    """Switch start at login on, with `command` (default: `launch_command()`).
    Returns where: the file written, or the registry value on Windows."""
    kind = os_kind(platform)
    if kind is OsKind.MACOS:
        return launch_agent.enable(command or launch_command(platform))
    if kind is OsKind.WINDOWS:
        return windows_startup.enable(command or launch_command(platform))
    path = entry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ENTRY_NAME}.tmp")
    tmp.write_text(desktop_entry(command or launch_command(), autostart=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def disable(platform: str | None = None) -> None:
    kind = os_kind(platform)
    if kind is OsKind.MACOS:
        launch_agent.disable()
    elif kind is OsKind.WINDOWS:
        windows_startup.disable()
    else:
        with contextlib.suppress(FileNotFoundError):
            entry_path().unlink()


def set_enabled(enabled: bool, platform: str | None = None) -> bool:
    """Switch it on or off; returns what `is_enabled` says afterwards."""
    if enabled:
        enable(platform=platform)
    else:
        disable(platform)
    return is_enabled(platform)
