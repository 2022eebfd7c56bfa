"""packaging/gpu-tray-watch.service: a user unit that runs `gpu-tray watch` and
restarts it when it fails; the README says how to enable it."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "gpu-tray-watch.service"


def test_the_unit_runs_gpu_tray_watch_and_restarts_on_failure() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["ExecStart"].split()[-2:] == ["gpu-tray", "watch"]
    assert service["ExecStart"].split()[0].startswith("/")  # systemd wants an absolute path
    assert service["Restart"] == "on-failure"
    assert service["Type"] == "simple"
    assert unit["Install"]["WantedBy"] == "default.target"
    readme = (REPO / "README.md").read_text()
    assert "systemctl --user enable --now gpu-tray-watch" in readme
    assert "cp packaging/gpu-tray-watch.service ~/.config/systemd/user/" in readme
