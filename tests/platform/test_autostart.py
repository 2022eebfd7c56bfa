"""Start at login: the XDG autostart entry, and the desktop files we ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.platform import autostart

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_enable_writes_the_entry_and_disable_removes_it(xdg: Path) -> None:
    assert not autostart.is_enabled()
    path = autostart.enable(["gpu-tray"])
    assert path == xdg / "autostart" / "gpu-tray.desktop"
    assert autostart.is_enabled()
    assert path.read_text() == (ROOT / "packaging" / "gpu-tray-autostart.desktop").read_text()
    autostart.disable()
    assert not path.exists() and not autostart.is_enabled()
    autostart.disable()  # twice is fine


def test_the_app_entry_matches_what_we_ship() -> None:
    shipped = (ROOT / "packaging" / "gpu-tray.desktop").read_text()
    assert autostart.desktop_entry(["gpu-tray"], autostart=False) == shipped


@pytest.mark.parametrize(
    ("text", "enabled"),
    [
        ("[Desktop Entry]\nExec=gpu-tray\n", True),
        ("[Desktop Entry]\nExec=gpu-tray\nHidden=true\n", False),
        ("[Desktop Entry]\nExec=gpu-tray\nX-GNOME-Autostart-enabled=false\n", False),
    ],
)
def test_an_entry_switched_off_by_the_desktop_counts_as_off(
    xdg: Path, text: str, enabled: bool
) -> None:
    (xdg / "autostart").mkdir(parents=True)
    (xdg / "autostart" / "gpu-tray.desktop").write_text(text)
    assert autostart.is_enabled() is enabled


def unquote_exec(value: str) -> list[str]:
    """What a launcher does with an Exec value (Desktop Entry spec): string unescaping, then
    split on spaces, where inside double quotes a backslash escapes " ` $ and itself."""
    value = value.replace("\\\\", "\\")
    args, current, quoted, i, started = [], "", False, 0, False
    while i < len(value):
        c = value[i]
        if quoted and c == "\\" and i + 1 < len(value) and value[i + 1] in '"`$\\':
            current += value[i + 1]
            i += 2
            continue
        if c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if started:
                args.append(current)
            current, started = "", False
        else:
            current, started = current + c, True
        i += 1
    if started:
        args.append(current)
    return [a.replace("%%", "%") for a in args]


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "-m", "gpu_tray"],
        ["/home/a b/.venv/bin/python", "-m", "gpu_tray"],
        ['/odd/"quoted"/$HOME/`x`/back\\slash/100%/python'],
    ],
)
def test_exec_line_gives_the_launcher_the_same_arguments(argv: list[str]) -> None:
    entry = autostart.desktop_entry(argv, autostart=True)
    [line] = [line for line in entry.splitlines() if line.startswith("Exec=")]
    assert unquote_exec(line[len("Exec=") :]) == argv


def test_launch_command_prefers_the_script_on_path(tmp_path: Path, monkeypatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "gpu-tray"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    assert autostart.launch_command() == ["gpu-tray"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    import sys

    assert autostart.launch_command() == [sys.executable, "-m", "gpu_tray"]
