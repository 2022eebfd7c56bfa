"""`gpu-tray wait`, run as a user runs it, on a scripted cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness.scripted import ROOT, app_env, gpu, gpu_tray_argv, host, write_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.toml"
    config.write_text("poll_interval_s = 1\n[notify]\nconfirm_polls = 2\n")
    return tmp_path / "cluster.json", config


def run_wait(
    cluster_file: Path, config: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        gpu_tray_argv("wait", "--demo", "--config", str(config), *args),
        cwd=ROOT,
        env=app_env(GPU_TRAY_DEMO_SCRIPT=str(cluster_file)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wait_prints_the_host_and_gpus_and_exits_0(cluster: tuple[Path, Path]) -> None:
    path, config = cluster
    write_cluster(
        path, [host("node3", [gpu(0, False), gpu(1, False), gpu(2, True), gpu(3, False)])]
    )
    done = run_wait(path, config, "--host", "node3", "--timeout", "30")
    assert (done.returncode, done.stdout, done.stderr) == (0, "node3 2\n", "")


def test_wait_json_gives_the_ready_command(cluster: tuple[Path, Path]) -> None:
    path, config = cluster
    write_cluster(path, [host("node3", [gpu(0, True), gpu(1, True), gpu(2, False)])])
    done = run_wait(path, config, "--count", "2", "--model", "A100", "--json", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["host"] == "node3"
    assert doc["gpus"] == [0, 1]
    assert doc["cuda_visible_devices"] == "0,1"
    assert doc["command"] == "ssh -t node3 'export CUDA_VISIBLE_DEVICES=0,1; exec \"$SHELL\" -l'"


def test_wait_times_out_with_exit_3_and_reports_failing_hosts(cluster: tuple[Path, Path]) -> None:
    path, config = cluster
    write_cluster(
        path,
        [
            host("node3", [gpu(0, False)]),
            host("node9", [], state="timeout", error="No answer from node9 within 10 s"),
        ],
    )
    done = run_wait(path, config, "--timeout", "3")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr == (
        "gpu-tray: node9: timeout: No answer from node9 within 10 s\n"
        "gpu-tray: nothing matched within 3 s\n"
    )


def test_wait_gpu_needs_host(cluster: tuple[Path, Path]) -> None:
    path, config = cluster
    write_cluster(path, [host("node3", [gpu(0, True)])])
    done = run_wait(path, config, "--gpu", "2")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "gpu-tray: --gpu needs --host\n")


def test_wait_prints_when_slurm_expects_the_gpus_to_free(cluster: tuple[Path, Path]) -> None:
    path, config = cluster
    gpus = [gpu(i, False) for i in range(4)]
    for g in gpus[:3]:
        g["expected_free_at"] = "2026-11-23T14:34:10Z"  # rounded up: ~14:35
    gpus[3]["expected_free_at"] = "2026-11-23T16:00:00Z"
    write_cluster(path, [host("node1", gpus)])
    done = subprocess.run(
        gpu_tray_argv("wait", "--demo", "--config", str(config), "--timeout", "2.5"),
        cwd=ROOT,
        env=app_env(GPU_TRAY_DEMO_SCRIPT=str(path), TZ="UTC"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        "gpu-tray: node1: 3 GPUs expected free at ~14:35, 1 at ~16:00\n"
        "gpu-tray: nothing matched within 2.5 s\n"
    )
