"""The demo cluster and `gpu-tray status` (table, JSON schema, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gpu_tray.core.availability import summarize
from gpu_tray.core.models import HostState
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.sources.demo.cluster import DemoCluster

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # a Monday afternoon


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpu_tray", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_demo_is_deterministic() -> None:
    a, b = DemoCluster(seed=3), DemoCluster(seed=3)
    for k in range(0, 7 * 24, 5):
        t = T0 + timedelta(hours=k, minutes=k)
        assert a.snapshots_at(t) == b.snapshots_at(t)


def test_demo_jobs_start_and_finish_and_days_are_busier_than_nights() -> None:
    c = DemoCluster()
    day, night = [], []
    for k in range(14 * 24):
        t = T0 + timedelta(hours=k)
        free = summarize(c.snapshots_at(t), lambda _: FreeThresholds()).free
        hour_ok = t.weekday() < 5 and 9 <= t.hour < 19
        (day if hour_ok else night).append(free)
    assert sum(day) / len(day) < sum(night) / len(night)
    assert min(day + night) < max(day + night)  # jobs come and go


def test_demo_has_a_flaky_host_and_mig_units() -> None:
    c = DemoCluster()
    states = {c.snapshot("demo-flaky", T0 + timedelta(minutes=m)).state for m in range(0, 360, 2)}
    assert states == {HostState.OK, HostState.TIMEOUT}
    h100 = c.snapshot("demo-h100", T0)
    assert h100.gpus[7].mig_enabled and len(h100.gpus[7].mig_devices) == 4
    models = {g.name for s in c.snapshots_at(T0) for g in s.gpus}
    assert len(models) == 5


def _no_history(tmp_path: Path) -> dict[str, str]:
    """status reads the history (idle_since, "usually free by"): none here, so the
    output does not depend on what the demo tray stored on this machine."""
    import os

    return {**os.environ, "GPU_TRAY_HISTORY": str(tmp_path / "none.sqlite3")}


def test_status_demo_table(tmp_path: Path) -> None:
    out = run_cli("status", "--demo", env=_no_history(tmp_path))
    assert out.returncode in (0, 1), out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["HOST", "GPU", "MODEL", "MEMORY", "UTIL", "TEMP", "USERS", "STATE"]
    assert any("demo-h100" in line and "MIG 3g.40gb" in line for line in lines)
    assert any(line.rstrip().endswith(("FREE", "BUSY")) for line in lines)
    assert any(line.endswith("GPUs free on 5 hosts") for line in lines)


def test_status_json_schema(tmp_path: Path) -> None:
    out = run_cli("status", "--demo", "--json", env=_no_history(tmp_path))
    doc = json.loads(out.stdout)
    assert set(doc) == {"generated_at", "free_gpus", "total_gpus", "hosts"}
    assert datetime.strptime(doc["generated_at"], "%Y-%m-%dT%H:%M:%SZ")
    host_keys = {
        "name",
        "state",
        "error",
        "polled_at",
        "latency_ms",
        "source",
        "node_state",
        "usually_free_by",
        "health",
        "gpus",
    }
    gpu_keys = {
        "index",
        "uuid",
        "name",
        "memory_total_mib",
        "memory_used_mib",
        "utilization_pct",
        "temperature_c",
        "power_w",
        "free",
        "fault",
        "allocated",
        "note",
        "idle_since",
        "expected_free_at",
        "mig_devices",
        "processes",
    }
    free = units = 0
    for host in doc["hosts"]:
        assert set(host) == host_keys
        assert host["state"] in {s.value for s in HostState}
        health = host["health"]  # the demo host is down: unknown; else every key, typed
        if host["state"] != "ok":
            assert health is None
        else:
            assert set(health) >= {"load1", "cpus", "mem_total_mib", "mem_used_mib", "disks"}
            assert isinstance(health["load1"], float) and isinstance(health["cpus"], int)
            assert 0 < health["mem_used_mib"] < health["mem_total_mib"]
            assert health["disks"][0]["path"] == "/"
            for disk in health["disks"]:
                assert set(disk) >= {"path", "total_mib", "used_mib"}
                assert 0 < disk["used_mib"] < disk["total_mib"]
        for gpu in host["gpus"]:
            assert set(gpu) == gpu_keys
            for proc in gpu["processes"]:
                assert set(proc) == {"pid", "user", "name", "used_memory_mib"}
            free += (
                len([m for m in gpu["mig_devices"] if not m["processes"]])
                if gpu["mig_devices"]
                else int(gpu["free"])
            )
            units += len(gpu["mig_devices"]) or 1
    assert (doc["free_gpus"], doc["total_gpus"]) == (free, units)
    # 23 units when every host answers; the flaky host (2 GPUs) is down 12 min in 3 h,
    # and a one-off poll has no earlier data to show for it.
    down = [h["name"] for h in doc["hosts"] if h["state"] != "ok"]
    assert down in ([], ["demo-flaky"])
    assert units == 23 - 2 * len(down)

    mig = next(g for h in doc["hosts"] for g in h["gpus"] if g["mig_devices"])
    assert mig["utilization_pct"] is None  # unknown is null, never 0
    assert out.returncode == (0 if all(h["state"] == "ok" for h in doc["hosts"]) else 1)


def test_status_config_errors_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[hosts]]\nname = "a"\nport = "x"\n')
    out = run_cli("status", "--config", str(cfg))
    assert out.returncode == 2
    assert out.stderr == (
        f'gpu-tray: {cfg}, line 3: hosts[0].port: must be an integer from 1 to 65535, got "x"\n'
    )
    missing = run_cli("status", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"gpu-tray: No configuration at {tmp_path / 'nope.toml'}.")
    bad_usage = run_cli("status", "--bogus")
    assert bad_usage.returncode == 2


def test_version() -> None:
    out = run_cli("--version")
    assert out.stdout.strip() == "gpu-tray 0.1.0"


def test_table_says_allocated_and_fault_for_scheduler_gpus() -> None:
    from gpu_tray.core.models import GpuSample, HostSnapshot, HostState
    from gpu_tray.core.report import status_table
    from gpu_tray.core.settings import Config

    snap = HostSnapshot(
        "gpu01",
        HostState.OK,
        gpus=(
            GpuSample(0, "", "a100", allocated=True),
            GpuSample(1, "", "a100", allocated=False),
            GpuSample(2, "", "a100", allocated=False, fault="not available: node drained (fan)"),
        ),
        source="slurm",
    )
    table = status_table([snap], Config()).splitlines()
    assert [line.split()[-1] for line in table[1:4]] == ["ALLOCATED", "FREE", "FAULT"]
    assert table[-1] == "gpu01 GPU 2: not available: node drained (fan)"
