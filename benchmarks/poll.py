"""How long one polling round of N hosts takes, against baselines measured in the same run.

    sudo .venv/bin/python benchmarks/poll.py [--hosts 1,10,50] [--rounds 20]

Real sshd servers on loopback (one per 127.0.0.N address, several hosts per server
when N is large) run a fake `nvidia-smi`: a small sh script that prints real
captures, so that the time measured is SSH's and ours, not a Python start-up.

Compared, for one round over all N hosts:
- gpu-tray: one persistent paramiko connection per host with TCP_NODELAY, one exec
  of the constant poll script, all hosts at once (what the tray does every interval);
- the same without TCP_NODELAY;
- a peer: persistent asyncssh connections running the same command (gpustat-web's design);
- the baseline: `ssh` to each host in turn, a new connection every poll (cron-and-ssh
  dashboards);
- the floor: the same script run locally, without SSH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.ssh.host_keys import KnownHosts
from gpu_tray.sources.ssh.nvsmi import POLL_COMMAND, POLL_SCRIPT
from gpu_tray.sources.ssh.probe import SshProbe
from gpu_tray.sources.ssh.session import SshSession
from tests.harness.sshd import Sshd, SshWorld, install_fast_nvidia_smi, make_world

MAX_SERVERS = 10


def hosts_on(servers: list[Sshd], n: int, world: SshWorld) -> list[HostConfig]:
    return [
        HostConfig(
            f"node{i}",
            hostname=servers[i % len(servers)].address,
            port=servers[i % len(servers)].port,
            user=world.user,
            identity_file=str(world.client_key),
        )
        for i in range(n)
    ]


def timed_rounds(run_round: Callable[[], None], rounds: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        run_round()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run_round()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def ours(hosts: list[HostConfig], known: KnownHosts, rounds: int, nodelay: bool) -> list[float]:
    probes = [
        SshProbe(
            h, NoSecrets(), session=SshSession(h, NoSecrets(), known_hosts=known, nodelay=nodelay)
        )
        for h in hosts
    ]
    pool = ThreadPoolExecutor(max_workers=len(probes))  # the poller: a worker per host

    def run_round() -> None:
        for snaps in pool.map(lambda p: p.poll(), probes):
            assert snaps[0].ok, snaps[0].message

    try:
        return timed_rounds(run_round, rounds)
    finally:
        pool.shutdown()
        for p in probes:
            p.close()


def asyncssh_peer(hosts: list[HostConfig], known_file: Path, rounds: int) -> list[float]:
    import asyncssh

    loop = asyncio.new_event_loop()

    async def connect():
        return await asyncio.gather(
            *(
                asyncssh.connect(
                    h.hostname,
                    port=h.port,
                    username=h.user,
                    client_keys=[h.identity_file],
                    known_hosts=str(known_file),
                    agent_path=None,
                )
                for h in hosts
            )
        )

    conns = loop.run_until_complete(connect())

    async def one_round() -> None:
        # stdin at EOF at once: the script reads per-host values until EOF, and asyncssh
        # sends none when there is no input.
        runs = (c.run(POLL_COMMAND, stdin=asyncssh.DEVNULL) for c in conns)
        results = await asyncio.gather(*runs)
        assert all("##gpu-tray:end" in r.stdout for r in results)

    try:
        return timed_rounds(lambda: loop.run_until_complete(one_round()), rounds)
    finally:

        async def close() -> None:
            for c in conns:
                c.close()
            await asyncio.gather(*(c.wait_closed() for c in conns))

        loop.run_until_complete(close())
        loop.close()


def reconnect_each(hosts: list[HostConfig], known_file: Path, rounds: int) -> list[float]:
    def run_round() -> None:
        for h in hosts:
            out = subprocess.run(
                [
                    "ssh",
                    "-q",
                    "-p",
                    str(h.port),
                    "-i",
                    str(h.identity_file),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    f"UserKnownHostsFile={known_file}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "ControlMaster=no",
                    f"{h.user}@{h.hostname}",
                    POLL_COMMAND,
                ],
                input=b"",  # the script reads per-host values from stdin until EOF
                capture_output=True,
                check=True,
            )
            assert b"##gpu-tray:end" in out.stdout

    return timed_rounds(run_round, rounds, warmup=1)


def bare_exec(path_dir: Path, n: int, rounds: int) -> list[float]:
    """The script itself, N copies at once on this machine: the floor for a round."""
    env = {**os.environ, "PATH": f"{path_dir}:/usr/bin:/bin"}

    def one(_: int) -> None:
        out = subprocess.run(
            ["sh", "-c", POLL_SCRIPT], input=b"", env=env, capture_output=True, check=True
        )
        assert b"##gpu-tray:end" in out.stdout

    with ThreadPoolExecutor(max_workers=n) as pool:
        return timed_rounds(lambda: list(pool.map(one, range(n))), rounds)


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hosts", default="1,10,50")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/poll.py needs root (it starts sshd and a test user)", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.hosts.split(",")]

    import pytest

    try:
        world = make_world()
    except pytest.skip.Exception as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    install_fast_nvidia_smi(world)
    servers = [
        Sshd(world, address=f"127.0.0.{i + 2}").start()
        for i in range(min(MAX_SERVERS, max(counts)))
    ]
    tmp = Path(tempfile.mkdtemp(prefix="gpu-tray-bench-"))
    known_file = tmp / "known_hosts"
    known_file.write_text("".join(s.known_hosts_line() for s in servers))
    known = KnownHosts([known_file], app_file=tmp / "app_known_hosts")
    bin_dir = servers[0].dir / "bin"
    rows: list[tuple[int, str, list[float]]] = []
    try:
        for n in counts:
            hosts = hosts_on(servers, n, world)
            rounds = args.rounds if n <= 10 else max(5, args.rounds // 2)
            base_rounds = 5 if n <= 10 else 3
            rows.append((n, "gpu-tray (persistent, TCP_NODELAY)", ours(hosts, known, rounds, True)))
            rows.append((n, "gpu-tray without TCP_NODELAY", ours(hosts, known, rounds, False)))
            rows.append((n, "peer: asyncssh persistent", asyncssh_peer(hosts, known_file, rounds)))
            rows.append(
                (n, "baseline: ssh to each in turn", reconnect_each(hosts, known_file, base_rounds))
            )
            rows.append((n, "floor: bare local exec, N at once", bare_exec(bin_dir, n, rounds)))
    finally:
        for s in servers:
            s.stop()

    print(f"\nOne polling round over N hosts (ms; {os.cpu_count()} CPUs; sshd on loopback)\n")
    head = f"{'N':>3}  {'method':<36} {'median':>9} {'p95':>9} {'ours / this':>12}"
    print(head)
    print("-" * len(head))
    med = {(n, m): statistics.median(t) for n, m, t in rows}
    for n, method, times in rows:
        m = statistics.median(times)
        ratio = med[(n, rows[0][1])] / m
        print(f"{n:>3}  {method:<36} {m:>9.1f} {p95(times):>9.1f} {ratio:>12.2f}")
    print()
    for n in counts:
        our = med[(n, "gpu-tray (persistent, TCP_NODELAY)")]
        base = med[(n, "baseline: ssh to each in turn")]
        peer = med[(n, "peer: asyncssh persistent")]
        print(
            f"N={n}: {base / our:.1f}x faster than reconnecting each host; "
            f"ours/asyncssh = {our / peer:.2f}"
        )
    if 1 in counts:
        overhead = med[(1, rows[0][1])] - med[(1, "floor: bare local exec, N at once")]
        print(f"per-host overhead over the bare exec (N=1): {overhead:.1f} ms")
    print(f"(shell-quoted command length: {len(shlex.split(POLL_COMMAND)[2])} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
