"""Start at login on Windows: the per-user Run key. Qt-free.

`HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`, value "gpu-tray", holds the
command line Windows runs at login. A shortcut "gpu-tray.lnk" in the user's Startup
folder (an installer's, or one the user made) counts as on too, and switching off
removes it with the value, so the menu's tick always says what happens at the next
login. Task Manager's "Disable" leaves the value and marks it in
`...\\Explorer\\StartupApproved\\Run`; that counts as off, and switching on clears it.

`winreg` exists only on Windows: it is imported when used, never at module level.
Everything here also takes the registry module and the environment, for tests.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
VALUE_NAME = "gpu-tray"
SHORTCUT = "gpu-tray.lnk"


def _winreg(reg: ModuleType | None) -> ModuleType:
    if reg is not None:
        return reg
    import winreg  # only on Windows

    return winreg


def startup_folder(env: Mapping[str, str] | None = None) -> Path | None:
    """The user's Startup folder (shell:startup); None without %APPDATA%."""
    appdata = (os.environ if env is None else env).get("APPDATA")
    if not appdata:
        return None
    return Path(appdata) / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"


def location() -> str:
    return "HKEY_CURRENT_USER\\" + RUN_KEY + "\\" + VALUE_NAME


def launch_command(executable: str | None = None) -> list[str]:
    """pythonw.exe (no console window at login) beside this python.exe, with -m gpu_tray.
    The `gpu-tray.exe` script pip makes is a console program: it would open one."""
    python = Path(executable or sys.executable)
    windowless = python.with_name("pythonw.exe")
    return [str(windowless if windowless.is_file() else python), "-m", "gpu_tray"]


def command_line(command: Sequence[str]) -> str:
    """One string, quoted as Windows programs split it (MS C runtime rules)."""
    return subprocess.list2cmdline(list(command))


def run_value(reg: ModuleType | None = None) -> str | None:
    winreg = _winreg(reg)
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_READ) as key:
            value, kind = winreg.QueryValueEx(key, VALUE_NAME)
    except FileNotFoundError:
        return None
    return value if kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) and value else None


def _approved_off(winreg: ModuleType) -> bool:
    """Task Manager wrote "disabled": the first byte is odd (03; enabled is 02 or 06)."""
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, APPROVED_KEY, 0, winreg.KEY_READ) as key:
            value, _kind = winreg.QueryValueEx(key, VALUE_NAME)
    except FileNotFoundError:
        return False
    return isinstance(value, bytes | bytearray) and len(value) > 0 and value[0] % 2 == 1


def is_enabled(reg: ModuleType | None = None, env: Mapping[str, str] | None = None) -> bool:
    winreg = _winreg(reg)
    if run_value(winreg) is not None and not _approved_off(winreg):
        return True
    folder = startup_folder(env)
    return folder is not None and (folder / SHORTCUT).is_file()


def enable(command: Sequence[str] | None = None, reg: ModuleType | None = None) -> str:
    """Set the Run value (and clear a Task Manager "disabled" mark). Returns where."""
    winreg = _winreg(reg)
    line = command_line(command or launch_command())
    with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
        winreg.SetValueEx(key, VALUE_NAME, 0, winreg.REG_SZ, line)
    _delete_value(winreg, APPROVED_KEY)
    return location()


def disable(reg: ModuleType | None = None, env: Mapping[str, str] | None = None) -> None:
    winreg = _winreg(reg)
    _delete_value(winreg, RUN_KEY)
    _delete_value(winreg, APPROVED_KEY)
    folder = startup_folder(env)
    if folder is not None:
        with contextlib.suppress(FileNotFoundError):
            (folder / SHORTCUT).unlink()


def _delete_value(winreg: ModuleType, key_path: str) -> None:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key_path, 0, winreg.KEY_SET_VALUE) as key:
            winreg.DeleteValue(key, VALUE_NAME)
    except FileNotFoundError:
        pass  # no key or no value: nothing to remove
