"""Host health: the poll script's health part run by a local `sh` (this machine's real
/proc, /sys and df), the parser on hand-made sections for the corner cases (no /proc,
odd df lines), the stdin protocol, the `disks` key of config.toml, and the words."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.config_edit import host_table, replace_host
from gpu_tray.core.host_form import check_form, form_of
from gpu_tray.core.models import DiskUsage, HostHealth, HostState
from gpu_tray.core.report import health_json, health_text
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.nvsmi import (
    MARK,
    MSG_MISSING,
    POLL_SCRIPT,
    parse_poll_output,
    poll_input,
)
from tests.harness.fake_nvidia_smi import __file__ as FAKE

NVSMI = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"
GPU = NVSMI / "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"

# A directory name a shell would love to expand: spaces, both quotes, $(...), `...`, a glob.
NASTY = "a b 'c' \"d\" $(touch PWNED) `touch PWNED2` * ~"


def run_script(
    tmp_path: Path, stdin: bytes, scenario: dict | None = None, nvsmi: bool = True
) -> bytes:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvsmi:
        shutil.copyfile(FAKE, bin_dir / "nvidia-smi")
        (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario or {"gpus": [{"csv": str(GPU)}]}))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GPU_TRAY_FAKE_NVSMI": str(tmp_path / "scenario.json"),
    }
    return subprocess.run(
        ["sh", "-c", POLL_SCRIPT],
        input=stdin,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def df_total_mib(path: str) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize // 1024 // 1024


# --- the stdin protocol ---------------------------------------------------------------


def test_poll_input_lines() -> None:
    host = HostConfig("n", disks=("/home", "/", "/scratch", "/home", "/bad\npath"))
    # "/" is always read, duplicates once, and a line break can never split a line.
    assert poll_input(host) == b"disk\t/home\ndisk\t/scratch\n"
    assert poll_input(HostConfig("n")) == b""


def test_the_script_stays_one_constant_line() -> None:
    assert "\n" not in POLL_SCRIPT and "'" not in POLL_SCRIPT and "\\\\" not in POLL_SCRIPT


# --- the script on this machine -------------------------------------------------------


def test_health_read_from_this_machine(tmp_path: Path) -> None:
    extra = tmp_path / "scratch"
    extra.mkdir()
    out = run_script(tmp_path, poll_input(HostConfig("n", disks=(str(extra), "/nope/none"))))
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.OK, None)  # the GPUs are untouched
    h = result.health
    assert h is not None
    assert h.cpus == os.sysconf("SC_NPROCESSORS_ONLN")
    assert h.mem_total_mib == meminfo_kib("MemTotal") // 1024
    assert h.mem_used_mib is not None and 0 < h.mem_used_mib < h.mem_total_mib
    expected_used = (meminfo_kib("MemTotal") - meminfo_kib("MemAvailable")) // 1024
    assert abs(h.mem_used_mib - expected_used) < h.mem_total_mib * 0.05
    assert h.load1 is not None and h.load5 is not None and h.load15 is not None
    assert abs(h.load15 - os.getloadavg()[2]) < 1.0  # a 15-min mean barely moves
    assert [d.path for d in h.disks] == ["/", str(extra), "/nope/none"]
    root, scratch, missing = h.disks
    assert root.total_mib == df_total_mib("/")
    assert scratch.total_mib == df_total_mib(str(extra))
    for d in (root, scratch):
        assert d.used_mib is not None and d.avail_mib is not None
        assert 0 < d.used_mib < d.total_mib  # type: ignore[operator]
    # A path that is not there is unknown, not an error, and costs no df.
    assert missing == DiskUsage("/nope/none", None, None, None)


def test_a_nasty_disk_path_is_one_literal_argument(tmp_path: Path) -> None:
    nasty = tmp_path / NASTY
    nasty.mkdir()
    out = run_script(tmp_path, poll_input(HostConfig("n", disks=(str(nasty),))))
    h = parse_poll_output(out).health
    assert h is not None
    assert [d.path for d in h.disks] == ["/", str(nasty)]
    assert h.disks[1].total_mib == df_total_mib(str(nasty))
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    assert not Path("PWNED").exists()


def test_health_is_read_when_nvidia_smi_is_missing(tmp_path: Path) -> None:
    if shutil.which("nvidia-smi", path="/usr/bin:/bin"):
        pytest.skip("this machine has a real nvidia-smi")
    out = run_script(tmp_path, b"", nvsmi=False)
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
    assert result.health is not None
    assert result.health.mem_total_mib == meminfo_kib("MemTotal") // 1024
    assert result.health.disks[0].total_mib == df_total_mib("/")


def test_health_is_read_when_nvidia_smi_fails(tmp_path: Path) -> None:
    scenario = {
        "error": {"text": "Failed to initialize NVML: Driver/library version mismatch", "exit": 18}
    }
    result = parse_poll_output(run_script(tmp_path, b"", scenario))
    assert (result.state, result.message) == (
        HostState.NVIDIA_SMI_ERROR,
        "nvidia-smi failed (exit 18): Failed to initialize NVML: Driver/library version mismatch",
    )
    assert result.health is not None and result.health.cpus == os.sysconf("SC_NPROCESSORS_ONLN")


def test_unknown_keys_and_lines_without_a_tab_are_ignored(tmp_path: Path) -> None:
    extra = tmp_path / "x"
    extra.mkdir()
    stdin = (
        f"nvidia_smi\t/opt/nv/bin/nvidia-smi\nno tab here\ndisk\t{extra}\n"
        f"disk\t{extra}/last-line-without-newline"
    ).encode()
    h = parse_poll_output(run_script(tmp_path, stdin)).health
    assert h is not None
    assert [d.path for d in h.disks] == ["/", str(extra), f"{extra}/last-line-without-newline"]


# --- the parser on hand-made output ---------------------------------------------------


def output(health: list[str], disks: list[str], rest: str | None = None) -> bytes:
    gpus = rest if rest is not None else f"{MARK}missing\n"
    lines = [f"{MARK}health", *health, f"{MARK}disks", *disks]
    return ("\n".join(lines) + "\n" + gpus).encode()


DF_HEAD = "Filesystem     1024-blocks     Used Available Capacity Mounted on"


def test_parse_exact_values() -> None:
    out = output(
        [
            "loadavg 12.50 8.25 4.00 3/1234 56789",
            "online 0-3,8-11",
            "memtotal 263856128",
            "memavailable 13192806",
        ],
        [
            "path=/",
            DF_HEAD,
            "/dev/nvme0n1p2   921600000 460800000 414720000      53% /",
            "path=/home",
            DF_HEAD,
            # An NFS export with a space in its name, mounted on a path with a space.
            "fs1:/export/my home 4096000000 3891200000 204800000      96% /mnt/my home",
        ],
    )
    result = parse_poll_output(out)
    assert result.state is HostState.NVIDIA_SMI_MISSING
    assert result.health == HostHealth(
        load1=12.5,
        load5=8.25,
        load15=4.0,
        cpus=8,
        mem_total_mib=257672,  # 263856128 kB
        mem_used_mib=(263856128 - 13192806) // 1024,
        disks=(
            DiskUsage("/", 900000, 450000, 405000),
            DiskUsage("/home", 4000000, 3800000, 200000),
        ),
    )
    assert result.health.warnings() == ("RAM 95% full", "/home 95% full")


def test_a_host_without_proc_is_unknown_not_an_error() -> None:
    # What the script prints where /proc, /sys and getconf are all missing and df fails.
    out = output(
        [],
        ["path=/", "path=/scratch"],
        f"{MARK}gpus rc=0 fields=index,uuid,name,"
        "memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw\n"
        "0, GPU-1, Tesla T4, 15360, 0, 0, 30, 9.5\n"
        f"{MARK}apps rc=0\n{MARK}owners\n{MARK}end\n",
    )
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.OK, None)
    assert result.health == HostHealth(disks=(DiskUsage("/"), DiskUsage("/scratch")))
    assert health_json(result.health) == {
        "load1": None,
        "load5": None,
        "load15": None,
        "cpus": None,
        "mem_total_mib": None,
        "mem_used_mib": None,
        "disks": [
            {"path": "/", "total_mib": None, "used_mib": None, "avail_mib": None},
            {"path": "/scratch", "total_mib": None, "used_mib": None, "avail_mib": None},
        ],
    }
    assert health_text(result.health) == "load ?/? · RAM ? · / ? · /scratch ?"


def test_cpu_count_fallback_and_garbage() -> None:
    h = parse_poll_output(output(["ncpu 96"], [])).health
    assert h == HostHealth(cpus=96)
    bad = parse_poll_output(
        output(
            ["loadavg nan -1 x", "online 7-3", "memtotal 100", "memavailable 200"],
            ["path=/", "df: /: Permission denied", "path="],
        )
    ).health
    # Unreadable values are unknown; more available than total is not believed.
    assert bad == HostHealth(mem_total_mib=0, disks=(DiskUsage("/"),))
    assert parse_poll_output(output(["online 0"], [])).health == HostHealth(cpus=1)


def test_output_without_health_sections_has_no_health() -> None:
    # An older script, or output cut before the health part.
    result = parse_poll_output(f"{MARK}missing\n".encode())
    assert (result.state, result.health) == (HostState.NVIDIA_SMI_MISSING, None)
    assert health_json(None) is None


def test_disk_percent_is_what_df_prints() -> None:
    # ext4 keeps 5% for root: df's Capacity is used / (used + available).
    root = DiskUsage("/", 1000, 900, 50)
    assert root.used_pct == pytest.approx(94.74, abs=0.01)
    assert DiskUsage("/x", 1000, 900).used_pct == 90.0  # no "available": of the total
    assert DiskUsage("/x").used_pct is None
    h = HostHealth(load1=3.25, cpus=64, mem_total_mib=4096, mem_used_mib=3700, disks=(root,))
    assert h.warnings() == ("RAM 90% full", "/ 95% full")  # 90.3% is over 90
    assert health_text(h) == (
        "load 3.2/64 · RAM 90% of 4 GiB · / 95% · WARN: RAM 90% full, / 95% full"
    )
    assert HostHealth(mem_total_mib=1000, mem_used_mib=900).warnings() == ()  # 90% is not over


# --- config.toml ----------------------------------------------------------------------


def test_disks_in_config() -> None:
    cfg = parse_config('[[hosts]]\nname = "a"\ndisks = ["/home", "/scratch dir", "/home"]\n')
    assert cfg.hosts[0].disks == ("/home", "/scratch dir")
    assert parse_config('[[hosts]]\nname = "a"\n').hosts[0].disks == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"/home"', 'hosts[0].disks: must be an array of absolute paths, got "/home"'),
        ('["home"]', 'hosts[0].disks: "home" is not an absolute path'),
        ("[3]", "hosts[0].disks: 3 is not an absolute path"),
        ('["/a\\tb"]', "hosts[0].disks: '/a\\tb' has a control character (tab, newline, ...)"),
    ],
)
def test_bad_disks_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f'[[hosts]]\nname = "a"\ndisks = {value}\n', Path("/c.toml"))
    assert str(err.value) == f"/c.toml, line 3: {problem}"


def test_disks_survive_editing_the_host() -> None:
    import tomlkit

    host = HostConfig("a", hostname="h", disks=("/home", "/scratch"))
    assert host_table(host)["disks"] == ["/home", "/scratch"]
    edited, problems = check_form(form_of(host))
    assert problems == {} and edited is not None and edited.disks == ("/home", "/scratch")
    doc = tomlkit.parse('[[hosts]]\nname = "a"\ndisks = ["/home", "/scratch"]\n')
    replace_host(doc, "a", edited)
    assert parse_config(tomlkit.dumps(doc)).hosts[0].disks == ("/home", "/scratch")


# --- the demo and the scripted cluster --------------------------------------------------


def test_the_demo_has_plausible_health_and_one_full_home() -> None:
    from datetime import UTC, datetime

    from gpu_tray.sources.demo.cluster import DemoCluster

    when = datetime(2026, 11, 23, 14, 32, tzinfo=UTC)
    snaps = {s.name: s for s in DemoCluster().snapshots_at(when)}
    marked = {}
    for name, snap in snaps.items():
        if not snap.ok:
            assert snap.health is None  # a host that did not answer has no health
            continue
        h = snap.health
        assert h is not None and h.cpus and h.mem_total_mib and h.load1 is not None
        assert 0 <= h.load1 <= 2 * h.cpus
        assert 0 < h.mem_used_mib < h.mem_total_mib  # type: ignore[operator]
        assert h.disks[0].path == "/"
        marked[name] = h.warnings()
    assert marked["demo-rtx4090"] == ("/home 94% full",)
    assert all(not w for n, w in marked.items() if n != "demo-rtx4090")
    # Deterministic: the same moment gives the same health.
    again = DemoCluster().snapshot("demo-h100", when)
    assert again.health == snaps["demo-h100"].health


def test_the_scripted_cluster_reads_health_back_from_status_json(tmp_path: Path) -> None:
    from gpu_tray.core.models import HostSnapshot
    from gpu_tray.core.report import status_document
    from gpu_tray.core.settings import Config
    from gpu_tray.sources.demo.scripted import ScriptedCluster

    h = HostHealth(
        load1=3.5,
        load5=3.0,
        load15=2.5,
        cpus=64,
        mem_total_mib=524288,
        mem_used_mib=503316,
        disks=(DiskUsage("/", 460800, 184320, 253440), DiskUsage("/gone")),
    )
    doc = status_document([HostSnapshot("n", HostState.OK, health=h)], Config())
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(doc))
    snap = ScriptedCluster(path).snapshot("n")
    assert (snap.state, snap.health) == (HostState.OK, h)
    doc["hosts"][0]["health"] = None
    path.write_text(json.dumps(doc) + " ")  # another size: read again
    assert ScriptedCluster(path).snapshot("n").health is None
    doc["hosts"][0]["health"] = "full"
    path.write_text(json.dumps(doc) + "  ")
    bad = ScriptedCluster(path).snapshot("n")
    assert (bad.state, bad.message) == (
        HostState.BAD_OUTPUT,
        f"{path}: n: health must be an object or null, not str",
    )
