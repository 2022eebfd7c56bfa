"""Drive a scripted cluster (gpu_tray/sources/scripted.py) from a test: write the file the
app re-reads on every poll, atomically, so a poll never sees half a file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
A100 = "NVIDIA A100-SXM4-80GB"


def gpu(
    index: int, free: bool = True, name: str = A100, user: str = "a.very-long-username"
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "index": index,
        "uuid": f"GPU-test-{index}",
        "name": name,
        "memory_total_mib": 81920,
        "memory_used_mib": 3 if free else 40960,
        "utilization_pct": 0 if free else 97,
        "temperature_c": 31 if free else 74,
        "power_w": 61.5 if free else 390.0,
        "mig_devices": [],
        "processes": []
        if free
        else [
            {"pid": 4242 + index, "user": user, "name": "python train.py", "used_memory_mib": 40400}
        ],
    }
    return doc


def host(
    name: str, gpus: list[dict[str, Any]], state: str = "ok", error: str | None = None
) -> dict[str, Any]:
    return {"name": name, "state": state, "error": error, "gpus": gpus}


def write_cluster(path: Path, hosts: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"hosts": hosts}), encoding="utf-8")
    os.replace(tmp, path)


def app_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for `python -m gpu_tray` running this checkout's code."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def gpu_tray_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpu_tray", *args]
