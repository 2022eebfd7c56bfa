"""`gpu-tray status` as a user runs it: a three-line config, ~/.ssh, real sshd hosts,
one of them dead, and the JSON document other tools read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from tests.harness.sshd import Sshd
from tests.ssh.conftest import host_for, known_hosts, make_probe

pytestmark = pytest.mark.sshd

ROOT = Path(__file__).resolve().parents[2]
H100_LOAD = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
H100_APPS = "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"
H100_IDLE = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_idle_allfields_header.csv"
MIG = "query-gpu_H100-80GB-HBM3-MIG_linux_drv590.48.01_idle_allfields_header.csv"
MIG_LIST = "list-L_H100-80GB-HBM3-MIG_linux_drv590.48.01.txt"
MIG_Q = "q-text_H100-80GB-HBM3-MIG_linux_drv590.48.01_idle.txt"


def user_home(tmp_path: Path, world, servers: dict[str, Sshd], timeout: int = 5) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "".join(
            f"Host {alias}\n  HostName {s.address}\n  Port {s.port}\n  User {world.user}\n"
            f"  IdentityFile {world.client_key}\n  ConnectTimeout {timeout}\n"
            for alias, s in servers.items()
        )
    )
    (home / ".ssh" / "known_hosts").write_text(
        "".join(s.known_hosts_line() for s in servers.values())
    )
    return home


def run_cli(home: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gpu_tray", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def write_config(home: Path, names: list[str]) -> Path:
    cfg = home / "config.toml"
    cfg.write_text("".join(f'[[hosts]]\nname = "{n}"\n\n' for n in names))
    return cfg


def test_status_json_over_ssh_with_a_dead_host(make_sshd, world, tmp_path: Path) -> None:
    busy = make_sshd()
    job = world.run_as_user("sleep", "600")
    try:
        busy.set_scenario(
            gpus=[{"csv": world.fixture(H100_LOAD)}],
            apps={"csv": world.fixture(H100_APPS), "pids": [job.pid, 4_000_000]},
        )
        idle = make_sshd()
        dead = Sshd(world, address="127.0.0.250")  # configured, never started
        home = user_home(tmp_path, world, {"busy": busy, "idle": idle, "dead": dead})
        cfg = write_config(home, ["busy", "idle", "dead"])
        out = run_cli(home, "status", "--json", "--config", str(cfg))
    finally:
        job.kill()
    assert out.returncode == 1, out.stderr
    assert out.stderr == ""
    doc = json.loads(out.stdout)
    assert set(doc) == {"generated_at", "free_gpus", "total_gpus", "hosts"}
    assert (doc["free_gpus"], doc["total_gpus"]) == (1, 2)
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert list(hosts) == ["busy", "idle", "dead"]
    for h in doc["hosts"]:
        assert set(h) == {
            "name", "state", "error", "polled_at", "latency_ms", "source", "node_state", "health",
            "gpus", "usually_free_by",
        }  # fmt: skip
        assert h["usually_free_by"] is None  # no history yet
        assert (h["source"], h["node_state"]) == ("ssh", None)
        assert h["polled_at"].endswith("Z")
    assert (hosts["dead"]["state"], hosts["dead"]["error"]) == (
        "unreachable",
        f"Connection refused by 127.0.0.250:{dead.port}",
    )
    assert hosts["dead"]["gpus"] == [] and hosts["dead"]["latency_ms"] is None
    assert hosts["dead"]["health"] is None  # unknown
    assert [d["path"] for d in hosts["busy"]["health"]["disks"]] == ["/"]
    assert (hosts["busy"]["state"], hosts["busy"]["error"]) == ("ok", None)
    assert isinstance(hosts["busy"]["latency_ms"], float)
    [gpu] = hosts["busy"]["gpus"]
    assert set(gpu) == {
        "index", "uuid", "name", "memory_total_mib", "memory_used_mib", "utilization_pct",
        "temperature_c", "power_w", "free", "fault", "allocated", "note", "mig_devices",
        "processes", "idle_since", "expected_free_at",
    }  # fmt: skip
    assert (gpu["allocated"], gpu["note"], gpu["fault"]) == (None, None, None)
    assert (gpu["idle_since"], gpu["expected_free_at"]) == (None, None)
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["free"] is False
    assert gpu["processes"] == [
        {"pid": job.pid, "user": "gputray-tester-long", "name": "/root/tools/memhog",
         "used_memory_mib": 2566},
        {"pid": 4_000_000, "user": None, "name": "/root/tools/memhog", "used_memory_mib": 1542},
    ]  # fmt: skip
    [idle_gpu] = hosts["idle"]["gpus"]
    assert idle_gpu["free"] is True and idle_gpu["processes"] == []


def test_status_table_shows_full_usernames(make_sshd, world, tmp_path: Path) -> None:
    busy = make_sshd()
    job = world.run_as_user("sleep", "600")
    try:
        busy.set_scenario(
            gpus=[{"csv": world.fixture(H100_LOAD)}],
            apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
        )
        home = user_home(tmp_path, world, {"busy": busy})
        out = run_cli(home, "status", "--config", str(write_config(home, ["busy"])))
    finally:
        job.kill()
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("busy"))
    assert row.split() == [
        "busy", "0", "NVIDIA", "H100", "80GB", "HBM3", "19.4/79.6", "GiB", "100%", "59C",
        "gputray-tester-long", "BUSY",
    ]  # fmt: skip
    assert out.stdout.splitlines()[-1] == "0 of 1 GPUs free on 1 hosts"


def test_mig_host_over_ssh(sshd, world, tmp_path: Path) -> None:
    sshd.set_scenario(
        gpus=[{"csv": world.fixture(MIG)}],
        list=world.fixture(MIG_LIST),
        q=world.fixture(MIG_Q),
    )
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (HostState.OK, None)
    [gpu] = snap.gpus
    assert gpu.mig_enabled
    assert [m.profile for m in gpu.mig_devices] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]


def test_driver_without_mig_field_falls_back(sshd, world, tmp_path: Path) -> None:
    sshd.set_scenario(gpus=[{"csv": world.fixture(H100_LOAD)}], legacy=True)
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (HostState.OK, None)
    assert snap.gpus[0].name == "NVIDIA H100 80GB HBM3"


@pytest.fixture
def netns() -> str:
    name = f"gputray-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_black_holed_host_does_not_delay_the_others(world, tmp_path: Path, netns: str) -> None:
    alive = Sshd(world, address="127.0.0.2", netns=netns)
    hole = Sshd(world, address="127.0.0.3", netns=netns)
    for s in (alive, hole):
        s.start()
    try:
        rule = "add rule inet gputray out ip daddr 127.0.0.3 drop"
        for cmd in (
            "add table inet gputray",
            "add chain inet gputray out { type filter hook output priority 0 ; }",
            rule,
        ):
            subprocess.run(["ip", "netns", "exec", netns, "nft", *cmd.split()], check=True)
        home = user_home(tmp_path, world, {"alive": alive, "hole": hole}, timeout=2)
        cfg = write_config(home, ["hole", "alive"])
        out = run_cli(
            home, "status", "--json", "--config", str(cfg), prefix=("ip", "netns", "exec", netns)
        )
    finally:
        for s in (alive, hole):
            s.stop()
    assert out.returncode == 1, out.stderr
    hosts = {h["name"]: h for h in json.loads(out.stdout)["hosts"]}
    assert (hosts["alive"]["state"], hosts["alive"]["error"]) == ("ok", None)
    assert (hosts["hole"]["state"], hosts["hole"]["error"]) == (
        "timeout",
        "No answer from 127.0.0.3:2222 within 2 s",
    )
    assert "Failed" not in alive.log_text()


def test_wait_returns_when_a_gpu_frees_on_a_real_host(make_sshd, world, tmp_path: Path) -> None:
    node3 = make_sshd()
    job = world.run_as_user("sleep", "600")
    node3.set_scenario(
        gpus=[{"csv": world.fixture(H100_LOAD)}],
        apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
    )
    home = user_home(tmp_path, world, {"node3": node3})
    cfg = home / "config.toml"
    cfg.write_text(
        'poll_interval_s = 1\n\n[notify]\nconfirm_polls = 2\n\n[[hosts]]\nname = "node3"\n'
    )
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    waiting = subprocess.Popen(
        [sys.executable, "-m", "gpu_tray", "wait", "--config", str(cfg), "--host", "node3",
         "--timeout", "60", "-v"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Busy until the wait has seen it busy: then the job ends and the GPU is idle.
        deadline = time.monotonic() + 30
        while node3.log_text().count("Accepted publickey") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a poll or two of the busy GPU
        assert waiting.poll() is None  # still waiting: nothing was free
        job.kill()
        node3.set_scenario(gpus=[{"csv": world.fixture(H100_IDLE)}])
        out, err = waiting.communicate(timeout=60)
    finally:
        job.kill()
        if waiting.poll() is None:
            waiting.kill()
    assert (waiting.returncode, out) == (0, "node3 0\n"), err[-2000:]


def test_wait_times_out_with_exit_3(sshd, world, tmp_path: Path) -> None:
    job = world.run_as_user("sleep", "600")
    sshd.set_scenario(
        gpus=[{"csv": world.fixture(H100_LOAD)}],
        apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
    )
    try:
        home = user_home(tmp_path, world, {"node3": sshd})
        cfg = write_config(home, ["node3"])
        done = run_cli(home, "wait", "--config", str(cfg), "--timeout", "3")
    finally:
        job.kill()
    assert (done.returncode, done.stdout, done.stderr) == (
        3,
        "",
        "gpu-tray: nothing matched within 3 s\n",
    )
