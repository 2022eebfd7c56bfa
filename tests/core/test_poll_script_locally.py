"""The constant poll script run by a local `sh`, with the fake nvidia-smi on PATH: the
PID list that reaches `ps` holds only digits, and owners come back whole."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
from pathlib import Path

from gpu_tray.sources.ssh.nvsmi import MARK, POLL_SCRIPT, parse_poll_output
from tests.harness.fake_nvidia_smi import __file__ as FAKE

NVSMI = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"
GPU = NVSMI / "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
APPS = NVSMI / "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"


def run_script(tmp_path: Path, scenario: dict) -> bytes:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copyfile(FAKE, bin_dir / "nvidia-smi")
    (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GPU_TRAY_FAKE_NVSMI": str(tmp_path / "scenario.json"),
    }
    return subprocess.run(
        ["sh", "-c", POLL_SCRIPT],
        input=b"",  # the script reads per-host values from stdin until EOF
        env=env,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def section(out: bytes, name: str) -> list[str]:
    lines = out.decode().splitlines()
    start = lines.index(f"{MARK}{name}") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(MARK))
    return lines[start:end]


def test_owners_of_visible_pids_only(tmp_path: Path) -> None:
    me = os.getpid()
    out = run_script(
        tmp_path,
        {"gpus": [{"csv": str(GPU)}], "apps": {"csv": str(APPS), "pids": [me, 999_999_999]}},
    )
    assert [line.split() for line in section(out, "owners")] == [[str(me), getpass.getuser()]]
    result = parse_poll_output(out)
    assert [(p.pid, p.user) for p in result.gpus[0].processes] == [
        (me, getpass.getuser()),
        (999_999_999, None),
    ]


def test_an_idle_host_runs_no_ps(tmp_path: Path) -> None:
    out = run_script(tmp_path, {"gpus": [{"csv": str(GPU)}]})
    assert section(out, "owners") == []
    assert parse_poll_output(out).gpus[0].processes == ()
