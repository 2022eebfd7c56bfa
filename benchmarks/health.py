"""What host health (load, CPUs, memory, disks) adds to a poll, against the same poll
without it, measured in the same run.

    sudo .venv/bin/python benchmarks/health.py [--rounds 200] [--local 500]

1. Over SSH: a real sshd on loopback with the fast fake nvidia-smi (a sh script printing
   a real H100 capture); one persistent paramiko session, as the tray keeps; the poll
   script with and without its health part, interleaved round by round so that drift
   hits both alike; with health, "/" only and "/" plus two more disk paths.
2. On the host: the same scripts run by a local `sh`, many times in a row, timing the
   wall clock and the CPU (user + system of the children) each exec costs there.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.ssh import health, nvsmi
from gpu_tray.sources.ssh.host_keys import KnownHosts
from gpu_tray.sources.ssh.session import SshSession
from tests.harness.sshd import Sshd, install_fast_nvidia_smi, make_world

HEALTH_LINES = set(health.script_lines(nvsmi.MARK))
WITHOUT_SCRIPT = "; ".join(line for line in nvsmi._SCRIPT_LINES if line not in HEALTH_LINES)
WITH_SCRIPT = nvsmi.POLL_SCRIPT
HEALTH_ONLY = "; ".join(["LC_ALL=C", "export LC_ALL", *nvsmi._STDIN_LINES, *HEALTH_LINES])


def command(script: str) -> str:
    return "sh -c " + shlex.quote(script)


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def over_ssh(sshd: Sshd, known: KnownHosts, world, disk_dir: Path, rounds: int) -> dict:
    host = HostConfig(
        "node",
        hostname=sshd.address,
        port=sshd.port,
        user=world.user,
        identity_file=str(world.client_key),
        disks=(str(disk_dir), "/tmp"),
    )
    session = SshSession(host, NoSecrets(), known_hosts=known)
    cases = {
        "poll without health (baseline)": (command(WITHOUT_SCRIPT), b""),
        "poll with health, / only": (command(WITH_SCRIPT), b""),
        "poll with health, / + 2 disks": (command(WITH_SCRIPT), nvsmi.poll_input(host)),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    try:
        for i in range(rounds + 5):
            for name, (cmd, stdin) in cases.items():
                t0 = time.perf_counter()
                result = session.run(cmd, 30.0, stdin=stdin)
                dt = (time.perf_counter() - t0) * 1000
                parsed = nvsmi.parse_poll_output(result.stdout, result.stderr, result.exit_status)
                assert parsed.state.value == "ok", parsed.message
                if "with health" in name:
                    assert parsed.health is not None and parsed.health.mem_total_mib
                if i >= 5:  # warm-up rounds are not counted
                    times[name].append(dt)
    finally:
        session.close()
    return times


def locally(path_dir: Path, disk_dir: Path, n: int) -> dict:
    env = {"PATH": f"{path_dir}:/usr/bin:/bin"}
    stdin = f"disk\t{disk_dir}\ndisk\t/tmp\n".encode()
    cases = {
        "script without health (baseline)": (WITHOUT_SCRIPT, b""),
        "script with health, / only": (WITH_SCRIPT, b""),
        "script with health, / + 2 disks": (WITH_SCRIPT, stdin),
        "health part alone, / only": (HEALTH_ONLY, b""),
    }
    out: dict[str, tuple[list[float], float]] = {}
    for name, (script, data) in cases.items():
        wall = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(["sh", "-c", script], input=data, env=env, capture_output=True)
            wall.append((time.perf_counter() - t0) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000 / n
        out[name] = (wall, cpu)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--local", type=int, default=500)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/health.py needs root (it starts sshd and a test user)", file=sys.stderr)
        return 2
    import pytest

    try:
        world = make_world()
    except pytest.skip.Exception as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    install_fast_nvidia_smi(world)
    sshd = Sshd(world, address="127.0.0.2").start()
    tmp = Path(tempfile.mkdtemp(prefix="gpu-tray-bench-health-"))
    known_file = tmp / "known_hosts"
    known_file.write_text(sshd.known_hosts_line())
    known = KnownHosts([known_file], app_file=tmp / "app_known_hosts")
    disk_dir = world.subdir("scratch")
    try:
        remote = over_ssh(sshd, known, world, disk_dir, args.rounds)
    finally:
        sshd.stop()
    fake_dir = tmp / "bin"
    fake_dir.mkdir()
    (fake_dir / "nvidia-smi").symlink_to(world.fake_nvsmi)
    local = locally(fake_dir, disk_dir, args.local)

    print(
        f"\nOne poll over SSH, persistent session ({args.rounds} rounds, interleaved; ms; "
        f"{os.cpu_count()} CPUs; sshd on loopback)\n"
    )
    head = f"{'case':<34} {'median':>8} {'p95':>8} {'+ vs baseline':>14}"
    print(head)
    print("-" * len(head))
    base = statistics.median(next(iter(remote.values())))
    for name, times in remote.items():
        m = statistics.median(times)
        print(f"{name:<34} {m:>8.2f} {p95(times):>8.2f} {m - base:>+14.2f}")

    print(f"\nThe script on the host, run by a local sh ({args.local} runs each; ms per run)\n")
    head = f"{'case':<34} {'wall med':>9} {'CPU':>7} {'+ CPU vs baseline':>18}"
    print(head)
    print("-" * len(head))
    base_cpu = next(iter(local.values()))[1]
    for name, (wall, cpu) in local.items():
        extra = f"{cpu - base_cpu:>+18.2f}" if "alone" not in name else f"{'':>18}"
        print(f"{name:<34} {statistics.median(wall):>9.2f} {cpu:>7.2f} {extra}")
    print(
        f"\n(script length: {len(WITHOUT_SCRIPT)} characters without health, "
        f"{len(WITH_SCRIPT)} with)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
