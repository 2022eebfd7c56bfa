"""Host health over a real sshd: the same exec as the GPUs, the disk paths sent on stdin,
and values checked against this machine's own /proc (the fake host is this machine)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpu_tray.core.models import DiskUsage, HostState
from gpu_tray.sources.ssh.nvsmi import MSG_MISSING
from tests.ssh.conftest import host_for, known_hosts, make_probe
from tests.ssh.test_status_over_ssh import run_cli, user_home

pytestmark = pytest.mark.sshd


def meminfo_mib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(key)


def total_mib(path: str) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize // 1024 // 1024


def test_health_over_ssh_with_custom_and_missing_disks(sshd, world, tmp_path: Path, probes) -> None:
    scratch = world.subdir("scratch dir $(id)")  # a real path the test user can reach
    host = host_for(sshd, disks=(str(scratch), "/no/such/disk"))
    probe = make_probe(host, known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.OK, None)
    assert len(snap.gpus) == 1
    h = snap.health
    assert h is not None
    assert h.cpus == os.sysconf("SC_NPROCESSORS_ONLN")
    assert h.mem_total_mib == meminfo_mib("MemTotal")
    assert h.mem_used_mib is not None and 0 < h.mem_used_mib < h.mem_total_mib
    assert all(v is not None and v >= 0 for v in (h.load1, h.load5, h.load15))
    assert [d.path for d in h.disks] == ["/", str(scratch), "/no/such/disk"]
    assert h.disks[0].total_mib == total_mib("/")
    assert h.disks[1].total_mib == total_mib(str(scratch))
    assert h.disks[1].used_mib is not None and h.disks[1].avail_mib is not None
    assert h.disks[2] == DiskUsage("/no/such/disk", None, None, None)
    assert probe.session.connects == 1  # no extra connection, no extra exec for health


def test_health_comes_back_when_nvidia_smi_is_missing(make_sshd, tmp_path: Path, probes) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has a real nvidia-smi on the remote PATH")
    sshd = make_sshd(with_nvidia_smi=False)
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
    assert snap.health is not None and snap.health.mem_total_mib == meminfo_mib("MemTotal")
    assert snap.health.disks[0].total_mib == total_mib("/")


def test_status_json_shows_health(make_sshd, world, tmp_path: Path) -> None:
    node = make_sshd()
    home = user_home(tmp_path, world, {"node": node})
    cfg = home / "config.toml"
    cfg.write_text('[[hosts]]\nname = "node"\ndisks = ["/nope"]\n')
    out = run_cli(home, "status", "--json", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    [host] = json.loads(out.stdout)["hosts"]
    health = host["health"]
    assert set(health) == {
        "load1", "load5", "load15", "cpus", "mem_total_mib", "mem_used_mib", "disks",
    }  # fmt: skip
    assert isinstance(health["load1"], float)
    assert health["cpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert health["mem_total_mib"] == meminfo_mib("MemTotal")
    root, nope = health["disks"]
    assert (root["path"], root["total_mib"]) == ("/", total_mib("/"))
    assert nope == {"path": "/nope", "total_mib": None, "used_mib": None, "avail_mib": None}
    table = run_cli(home, "status", "--config", str(cfg))
    assert table.returncode == 0, table.stderr
    [line] = [x for x in table.stdout.splitlines() if x.startswith("node ") and "load" in x]
    assert line.endswith(" · /nope ?") and " · / " in line
