"""A real Slurm (munged, slurmctld, two slurmd with fake GPUs), read through a real sshd
as the login node: jobs make GPUs allocated in `gpu-tray status --json`, scancel frees
them, `--gpus` jobs count, and a drained node is not available."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.availability import host_units
from gpu_tray.core.settings import Config, FreeThresholds, SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.slurm.probe import LocalRunner, SlurmProbe
from tests.harness.procs import skip_reason, wait_for
from tests.harness.slurm import BINARIES, FakeNode, SlurmCluster, running_cluster

pytestmark = [pytest.mark.engines, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NODES = (FakeNode("node1", 4, "fake"), FakeNode("node2", 2, None))


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    if reason := skip_reason(*BINARIES, need_root=True):
        pytest.skip(reason)
    with running_cluster(NODES, "gpu-tray-slurm-") as cluster:
        yield cluster


@pytest.fixture
def clean(slurm: SlurmCluster) -> Iterator[SlurmCluster]:
    """No job running and every node back in service, before and after a test."""
    yield _reset(slurm)
    _reset(slurm)


def _reset(slurm: SlurmCluster) -> SlurmCluster:
    slurm.run(["scancel", "--full", "-u", "root"], check=False)
    for node in NODES:
        slurm.run(["scontrol", "update", f"NodeName={node.name}", "State=RESUME"], check=False)
    wait_for(
        lambda: (
            not slurm.run(["squeue", "-h"]).stdout.strip()
            and all("(IDX:" not in u or "IDX:N/A" in u for u in map(slurm.gres_used, ("node1",)))
            and slurm.gres_used("node2") in ("gpu:0", "gpu:(null):0")
        ),
        20,
        "jobs to end",
    )
    wait_for(slurm._all_idle, 20, "nodes to be idle")
    return slurm


def allocated(snap_gpus) -> list[bool | None]:
    return [g.allocated for g in snap_gpus]


def test_local_probe_follows_the_jobs(clean: SlurmCluster) -> None:
    slurm = clean
    probe = SlurmProbe(
        SourceConfig(kind="slurm", login="localhost"),
        Config(),
        NoSecrets(),
        runner=LocalRunner(slurm.env),
    )
    snaps = {s.name: s for s in probe.poll()}
    assert [(n, s.state.value, s.node_state) for n, s in snaps.items()] == [
        ("node1", "ok", "idle"),
        ("node2", "ok", "idle"),
    ]
    assert [g.name for g in snaps["node1"].gpus] == ["fake"] * 4  # typed GRES
    assert [g.name for g in snaps["node2"].gpus] == ["GPU"] * 2  # untyped GRES
    assert allocated(snaps["node1"].gpus) == [False] * 4

    slurm.srun_background("--gres=gpu:2", "-w", "node1", "-J", "two-gpus")
    wait_for(lambda: "(IDX:0-1)" in slurm.gres_used("node1"), 20, "srun to hold 2 GPUs")
    job = slurm.submit("--gpus=1", "-w", "node2", "-J", "per-job")
    snaps = {s.name: s for s in probe.poll()}
    assert allocated(snaps["node1"].gpus) == [True, True, False, False]
    assert [g.users for g in snaps["node1"].gpus] == [("root",), ("root",), (), ()]
    # --gpus=1 is tres-per-job; untyped GRES has no IDX in GresUsed, the job detail has.
    assert allocated(snaps["node2"].gpus) == [True, False]
    assert snaps["node2"].gpus[0].processes[0].name == f"job {job} per-job"
    limits = FreeThresholds()
    assert [u.free for s in snaps.values() for u in host_units(s, limits)] == [
        False, False, True, True, False, True,
    ]  # fmt: skip


def status_json(home: Path, cfg: Path) -> tuple[int, dict]:
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "gpu_tray", "status", "--json", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stderr == ""
    return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def login(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory):
    """A real sshd standing in for the login node, with Slurm's client config on its PATH."""
    if reason := skip_reason("sshd", need_root=True):
        pytest.skip(reason)
    from tests.harness.sshd import Sshd, make_world

    world = make_world()
    sshd = Sshd(world, address="127.0.0.251", extra_config=f"SetEnv SLURM_CONF={slurm.conf}\n")
    # sshd keeps the first value of a keyword, and the harness sets PATH with SetEnv:
    # so Slurm's config reaches the remote shell through small wrappers instead.
    for tool in ("sinfo", "squeue", "scontrol"):
        wrapper = sshd.dir / "bin" / tool
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={slurm.conf} exec /usr/bin/{tool} "$@"\n')
        wrapper.chmod(0o755)
    sshd.start()
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text(
        f"Host login\n  HostName {sshd.address}\n  Port {sshd.port}\n  User {world.user}\n"
        f"  IdentityFile {world.client_key}\n"
    )
    (home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line())
    cfg = home / "config.toml"
    cfg.write_text('[[sources]]\nkind = "slurm"\nlogin = "login"\n')
    try:
        yield home, cfg
    finally:
        sshd.stop()


def gpus(doc: dict, host: str) -> list[tuple[bool | None, bool]]:
    [h] = [h for h in doc["hosts"] if h["name"] == host]
    return [(g["allocated"], g["free"]) for g in h["gpus"]]


def test_status_over_ssh_follows_srun_and_scancel(clean: SlurmCluster, login) -> None:
    slurm = clean
    home, cfg = login
    rc, doc = status_json(home, cfg)
    assert rc == 0
    assert [(h["name"], h["state"], h["source"], h["node_state"]) for h in doc["hosts"]] == [
        ("node1", "ok", "slurm", "idle"),
        ("node2", "ok", "slurm", "idle"),
    ]
    assert (doc["free_gpus"], doc["total_gpus"]) == (6, 6)

    srun = slurm.srun_background("--gres=gpu:2", "-w", "node1")
    wait_for(lambda: "(IDX:0-1)" in slurm.gres_used("node1"), 20, "srun to hold 2 GPUs")
    rc, doc = status_json(home, cfg)
    assert gpus(doc, "node1") == [(True, False), (True, False), (False, True), (False, True)]
    assert (doc["free_gpus"], doc["total_gpus"]) == (4, 6)
    job = slurm.run(["squeue", "-h", "-w", "node1", "-o", "%i"]).stdout.strip()
    [node1] = [h for h in doc["hosts"] if h["name"] == "node1"]
    assert [g["processes"] for g in node1["gpus"]] == [
        [{"pid": None, "user": "root", "name": f"job {job} sleep", "used_memory_mib": None}]
    ] * 2 + [[]] * 2

    slurm.run(["scancel", "-u", "root"])
    srun.wait(20)
    wait_for(lambda: "IDX:N/A" in slurm.gres_used("node1"), 20, "scancel to free the GPUs")
    rc, doc = status_json(home, cfg)
    assert gpus(doc, "node1") == [(False, True)] * 4
    assert (doc["free_gpus"], doc["total_gpus"]) == (6, 6)


def test_status_over_ssh_counts_gpus_jobs_and_drained_nodes(clean: SlurmCluster, login) -> None:
    slurm = clean
    home, cfg = login
    slurm.submit("--gpus=1", "-w", "node1")
    slurm.run(["scontrol", "update", "NodeName=node2", "State=DRAIN", "Reason=fan failure"])
    wait_for(
        lambda: "drain" in slurm.run(["sinfo", "-h", "-N", "-n", "node2", "-o", "%T"]).stdout,
        20,
        "node2 to drain",
    )
    rc, doc = status_json(home, cfg)
    assert rc == 0
    assert gpus(doc, "node1") == [(True, False), (False, True), (False, True), (False, True)]
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["node2"]["node_state"] == "drained"
    assert gpus(doc, "node2") == [(False, False), (False, False)]  # not allocated, not available
    assert (doc["free_gpus"], doc["total_gpus"]) == (3, 6)


def test_a_watch_rule_fires_once_when_scancel_frees_the_gpus(
    clean: SlurmCluster, login, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same hysteresis as the tray, over the real login node: 'any 4 GPUs on node1'
    is false while a job holds 2, and fires exactly once after scancel."""
    from gpu_tray.core.config import load_config
    from gpu_tray.core.rules import RuleEngine
    from gpu_tray.core.settings import WatchSpec
    from gpu_tray.sources.factory import build_probes

    slurm = clean
    home, cfg = login
    monkeypatch.setenv("HOME", str(home))  # ~/.ssh/config and known_hosts reach the login node
    config = load_config(cfg)
    [probe] = build_probes(config, NoSecrets())
    engine = RuleEngine([WatchSpec(host="node1", count=4)], config.thresholds_for, 2)
    fired = []

    def poll() -> None:
        for snap in probe.poll():
            assert snap.ok, snap.message
            fired.extend(engine.observe(snap))

    try:
        srun = slurm.srun_background("--gres=gpu:2", "-w", "node1")
        wait_for(lambda: "(IDX:0-1)" in slurm.gres_used("node1"), 20, "srun to hold 2 GPUs")
        for _ in range(3):
            poll()
        assert fired == []
        slurm.run(["scancel", "-u", "root"])
        srun.wait(20)
        wait_for(lambda: "IDX:N/A" in slurm.gres_used("node1"), 20, "scancel to free the GPUs")
        for _ in range(5):
            poll()
        [firing] = fired
        assert (firing.host, [u.gpu_index for u in firing.units]) == ("node1", [0, 1, 2, 3])
    finally:
        probe.close()


def test_controller_down_is_a_typed_state(slurm: SlurmCluster) -> None:
    """Last: it stops slurmctld."""
    probe = SlurmProbe(
        SourceConfig(kind="slurm", login="login1"),
        Config(),
        NoSecrets(),
        runner=LocalRunner(slurm.env),
    )
    assert [s.name for s in probe.poll()] == ["node1", "node2"]
    ctld = next(p for p in slurm._procs if p.args[0] == "slurmctld")
    ctld.terminate()
    ctld.wait(10)
    message = "sinfo failed on login1: slurm_load_partitions: Unable to contact slurm controller (connect failure)"
    assert [(s.name, s.state.value, s.message) for s in probe.poll()] == [
        ("node1", "unreachable", message),
        ("node2", "unreachable", message),
    ]
