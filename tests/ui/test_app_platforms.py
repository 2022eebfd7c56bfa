"""The tray app on macOS and Windows, with the platform faked (sys.platform, a fake
winreg): which notification backends it tries and where "Start at login" writes.
Offscreen Qt on Linux: nothing here has run on a real Mac or Windows machine."""

from __future__ import annotations

import plistlib
import sys
from pathlib import Path

import pytest

from gpu_tray.platform.notify import Notifier
from tests.harness.fake_winreg import RUN_KEY, FakeWinreg

PLIST_NAME = "io.github.gpu_tray.gpu_tray.plist"


@pytest.mark.parametrize(
    ("platform", "names"),
    [
        ("linux", ["freedesktop", "tray balloon", "log"]),
        ("freebsd14", ["freedesktop", "tray balloon", "log"]),
        ("darwin", ["tray balloon", "log"]),
        ("win32", ["tray balloon", "log"]),
    ],
)
def test_the_notification_chain_is_chosen_for_the_platform_at_start(
    make_app, monkeypatch, platform: str, names: list[str]
) -> None:
    app, _ = make_app()
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", platform)
        chain = app.default_chain()
    assert [name for name, _ in chain] == names


def test_on_macos_the_balloon_is_chosen_and_dbus_is_never_tried(make_app, monkeypatch) -> None:
    app, _ = make_app()
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", "darwin")
        chain = app.default_chain()
    notifier = Notifier(chain)
    try:
        assert notifier.wait_chosen(5) == "tray balloon"
    finally:
        notifier.close()


def test_start_at_login_on_macos_writes_the_launch_agent(
    make_app, qtbot, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    app, _ = make_app()
    monkeypatch.setattr(sys, "platform", "darwin")
    plist = tmp_path / "Library" / "LaunchAgents" / PLIST_NAME
    app.set_autostart(True)
    qtbot.waitUntil(lambda: app.state().autostart is True, timeout=5000)
    assert plistlib.loads(plist.read_bytes())["RunAtLoad"] is True
    assert not (tmp_path / ".config" / "autostart").exists()
    app.set_autostart(False)
    qtbot.waitUntil(lambda: app.state().autostart is False, timeout=5000)
    assert not plist.exists()


def test_start_at_login_on_windows_sets_the_run_value_or_says_why_not(
    make_app, qtbot, monkeypatch
) -> None:
    app, _ = make_app()
    winreg = FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", winreg)
    monkeypatch.setattr(sys, "platform", "win32")
    app.set_autostart(True)
    qtbot.waitUntil(lambda: app.state().autostart is True, timeout=5000)
    assert "gpu-tray" in winreg.keys[RUN_KEY]

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Access is denied")

    monkeypatch.setattr(winreg, "DeleteValue", refuse)
    app.set_autostart(False)
    message = "Could not change start at login: [Errno 13] Access is denied"
    qtbot.waitUntil(lambda: app.controller.problem == message, timeout=5000)
    assert message in app.state().notes
    assert app.state().autostart is True  # unchanged: the value is still there
