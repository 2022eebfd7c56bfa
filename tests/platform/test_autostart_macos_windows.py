"""Start at login on macOS (a LaunchAgent plist) and Windows (the Run key, the Startup
folder), tested here with the platform faked: the plist is written into a temporary
HOME and read back with plistlib; the registry is a fake `winreg` module that records
what a real one would hold. Neither has run on a real Mac or Windows machine."""

from __future__ import annotations

import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_tray.platform import autostart, launch_agent, windows_startup
from gpu_tray.platform.os_kind import OsKind, os_kind
from tests.harness.fake_winreg import APPROVED_KEY, RUN_KEY, FakeWinreg

PLIST_NAME = "io.github.gpu_tray.gpu_tray.plist"


@pytest.fixture(autouse=True)
def homes(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "AppData" / "Roaming"))
    return tmp_path / "home"


def xdg_entry(home: Path) -> Path:
    return home / ".config" / "autostart" / "gpu-tray.desktop"


@pytest.mark.parametrize(
    ("platform", "kind"),
    [
        ("linux", OsKind.XDG),
        ("freebsd14", OsKind.XDG),
        ("openbsd7", OsKind.XDG),
        ("darwin", OsKind.MACOS),
        ("win32", OsKind.WINDOWS),
        ("cygwin", OsKind.XDG),
    ],
)
def test_each_platform_gets_its_own_conventions(platform: str, kind: OsKind) -> None:
    assert os_kind(platform) is kind


# -- macOS --------------------------------------------------------------------------------


def test_macos_writes_a_launch_agent_that_plistlib_reads_back(homes: Path) -> None:
    assert not autostart.is_enabled("darwin")
    where = autostart.enable(["/Users/a b/.local/bin/gpu-tray"], platform="darwin")
    path = homes / "Library" / "LaunchAgents" / PLIST_NAME
    assert where == path
    with path.open("rb") as f:
        assert plistlib.load(f) == {
            "Label": "io.github.gpu_tray.gpu_tray",
            "ProgramArguments": ["/Users/a b/.local/bin/gpu-tray"],
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
    assert autostart.is_enabled("darwin")
    assert autostart.location("darwin") == str(path)
    assert not xdg_entry(homes).exists()  # no XDG entry, which macOS would ignore
    autostart.disable("darwin")
    assert not path.exists() and not autostart.is_enabled("darwin")
    autostart.disable("darwin")  # twice is fine


def test_macos_is_chosen_from_sys_platform(homes: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert autostart.set_enabled(True) is True
    with (homes / "Library" / "LaunchAgents" / PLIST_NAME).open("rb") as f:
        args = plistlib.load(f)["ProgramArguments"]
    # launchd starts it with a minimal PATH: the command must be absolute.
    assert Path(args[0]).is_absolute()
    assert not xdg_entry(homes).exists()
    assert autostart.set_enabled(False) is False


@pytest.mark.parametrize(
    ("content", "enabled"),
    [
        (plistlib.dumps({"Label": "io.github.gpu_tray.gpu_tray", "Disabled": True}), False),
        (plistlib.dumps({"Label": "io.github.gpu_tray.gpu_tray", "Disabled": False}), True),
        (plistlib.dumps({"Label": "someone.else"}), False),
        (plistlib.dumps(["not", "a", "dict"]), False),
        (b"not a plist", False),
    ],
)
def test_macos_a_switched_off_or_damaged_agent_counts_as_off(
    homes: Path, content: bytes, enabled: bool
) -> None:
    (homes / "Library" / "LaunchAgents").mkdir(parents=True)
    (homes / "Library" / "LaunchAgents" / PLIST_NAME).write_bytes(content)
    assert launch_agent.is_enabled() is enabled


def test_macos_launch_command_is_the_script_by_absolute_path(tmp_path: Path, monkeypatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gpu-tray").write_text("#!/bin/sh\n")
    (bindir / "gpu-tray").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    assert autostart.launch_command("darwin") == [str(bindir / "gpu-tray")]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert autostart.launch_command("darwin") == [sys.executable, "-m", "gpu_tray"]


# -- Windows ------------------------------------------------------------------------------


@pytest.fixture
def winreg(monkeypatch) -> FakeWinreg:
    """`import winreg` gives the fake, and this machine says it is Windows."""
    fake = FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", fake)
    monkeypatch.setattr(sys, "platform", "win32")
    return fake


def startup(tmp_path: Path) -> Path:
    return (
        tmp_path
        / "AppData"
        / "Roaming"
        / "Microsoft"
        / "Windows"
        / "Start Menu"
        / "Programs"
        / "Startup"
    )


def test_windows_writes_the_run_value_of_the_current_user(winreg: FakeWinreg, homes: Path) -> None:
    assert autostart.is_enabled() is False
    assert autostart.set_enabled(True) is True
    value, kind = winreg.keys[RUN_KEY]["gpu-tray"]
    assert kind == winreg.REG_SZ
    assert value == subprocess.list2cmdline([sys.executable, "-m", "gpu_tray"])
    assert autostart.location() == rf"HKEY_CURRENT_USER\{RUN_KEY}\gpu-tray"
    assert not xdg_entry(homes).exists()
    assert autostart.set_enabled(False) is False
    assert "gpu-tray" not in winreg.keys[RUN_KEY]
    autostart.disable()  # twice is fine


def test_windows_quotes_a_path_with_spaces_and_prefers_pythonw(tmp_path: Path) -> None:
    scripts = tmp_path / "pipx venvs" / "gpu-tray" / "Scripts"
    scripts.mkdir(parents=True)
    (scripts / "python.exe").write_bytes(b"")
    (scripts / "pythonw.exe").write_bytes(b"")  # no console window at login
    command = windows_startup.launch_command(str(scripts / "python.exe"))
    assert command == [str(scripts / "pythonw.exe"), "-m", "gpu_tray"]
    assert windows_startup.command_line(command) == f'"{scripts / "pythonw.exe"}" -m gpu_tray'


def test_windows_a_shortcut_in_the_startup_folder_counts_and_switching_off_removes_it(
    winreg: FakeWinreg, tmp_path: Path
) -> None:
    folder = startup(tmp_path)
    assert windows_startup.startup_folder() == folder
    folder.mkdir(parents=True)
    (folder / "gpu-tray.lnk").write_bytes(b"L\0\0\0")  # an installer's shortcut
    (folder / "other.lnk").write_bytes(b"L\0\0\0")
    assert autostart.is_enabled() is True
    assert autostart.set_enabled(False) is False
    assert not (folder / "gpu-tray.lnk").exists()
    assert (folder / "other.lnk").exists()  # someone else's is left alone


def test_windows_without_appdata_there_is_no_startup_folder(
    winreg: FakeWinreg, monkeypatch
) -> None:
    monkeypatch.delenv("APPDATA")
    assert windows_startup.startup_folder() is None
    assert autostart.is_enabled() is False
    autostart.disable()


def test_windows_task_managers_disable_counts_as_off_and_switching_on_clears_it(
    winreg: FakeWinreg,
) -> None:
    autostart.set_enabled(True)
    winreg.keys[APPROVED_KEY] = {"gpu-tray": (b"\x03" + bytes(11), winreg.REG_BINARY)}
    assert autostart.is_enabled() is False
    winreg.keys[APPROVED_KEY]["gpu-tray"] = (b"\x02" + bytes(11), winreg.REG_BINARY)
    assert autostart.is_enabled() is True
    winreg.keys[APPROVED_KEY]["gpu-tray"] = (b"\x03" + bytes(11), winreg.REG_BINARY)
    assert autostart.set_enabled(True) is True
    assert "gpu-tray" not in winreg.keys[APPROVED_KEY]


def test_windows_an_empty_or_binary_run_value_is_off(winreg: FakeWinreg) -> None:
    winreg.keys[RUN_KEY] = {"gpu-tray": ("", winreg.REG_SZ)}
    assert autostart.is_enabled() is False
    winreg.keys[RUN_KEY] = {"gpu-tray": (b"\x00", winreg.REG_BINARY)}
    assert autostart.is_enabled() is False


def test_windows_a_registry_that_refuses_is_an_oserror_the_app_reports(
    winreg: FakeWinreg, monkeypatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(13, "Access is denied")

    monkeypatch.setattr(winreg, "SetValueEx", refuse)
    with pytest.raises(PermissionError, match="Access is denied"):
        autostart.set_enabled(True)


def test_linux_still_writes_the_xdg_entry(homes: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    assert autostart.set_enabled(True) is True
    assert xdg_entry(homes).is_file()
    assert not (homes / "Library").exists()
    assert autostart.location() == str(xdg_entry(homes))
