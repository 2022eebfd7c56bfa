"""One poll of a big cluster through Prometheus, against SSH polling, in the same run.

    sudo .venv/bin/python benchmarks/sources.py [--nodes 500] [--gpus 8] [--targets 10]
                                                [--ssh-hosts 50] [--rounds 10]

A real Prometheus (Debian's) scrapes a few local HTTP targets that serve generated
DCGM exporter texts: NODES x GPUS GPUs, every series of the real L4 capture
(tests/fixtures/cluster/dcgm_metrics_l4_kops.txt) with its labels renamed per node
and GPU. gpu-tray's Prometheus probe then polls it: one instant query.

The baseline gathers the same information the way the tray does for SSH hosts:
one persistent connection per host, one exec of the constant poll script, all hosts
at once, against SSH_HOSTS real sshd hosts on loopback whose fake nvidia-smi prints
GPUS rows of a real H100 capture. Its time and bytes are scaled linearly to NODES.

Target (issue 6): one Prometheus poll of 4,000 GPUs in under 1 s on this machine.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_tray.core.settings import SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.prometheus.dcgm import (
    QUERY_METRICS,
    build_hosts,
    parse_exposition,
    series_from_query,
)
from gpu_tray.sources.prometheus.probe import PrometheusProbe
from tests.harness.procs import skip_reason, wait_for
from tests.harness.prometheus import FakeExporter, PrometheusServer, ScrapeJob

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TEMPLATE = FIXTURES / "cluster" / "dcgm_metrics_l4_kops.txt"


def exporter_texts(nodes: int, gpus: int, targets: int) -> list[str]:
    """The real L4 capture, relabelled for every node and GPU, split over `targets`."""
    series = parse_exposition(TEMPLATE.read_text()).series
    lines: list[list[str]] = [[] for _ in range(targets)]
    for n in range(nodes):
        out = lines[n % targets]
        for g in range(gpus):
            busy = (n * gpus + g) % 3 != 0
            for s in series:
                labels = dict(s.labels)
                labels.update(
                    gpu=str(g),
                    UUID=f"GPU-{n:08x}-0000-4000-8000-{g:012x}",
                    device=f"nvidia{g}",
                    modelName="NVIDIA H100 80GB HBM3",
                    Hostname=f"node-{n:04d}",
                    pci_bus_id=f"00000000:{g + 0x18:02X}:00.0",
                )
                value = s.value
                if s.name == "DCGM_FI_DEV_FB_USED":
                    value = 61000.0 if busy else 0.0
                elif s.name == "DCGM_FI_DEV_GPU_UTIL":
                    value = 97.0 if busy else 0.0
                body = ",".join(f'{k}="{v}"' for k, v in labels.items())
                out.append(f"{s.name}{{{body}}} {value:g}")
    return ["\n".join(chunk) + "\n" for chunk in lines]


def timed(fn, rounds: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def prometheus_part(args: argparse.Namespace, root: Path) -> dict[str, tuple]:
    texts = exporter_texts(args.nodes, args.gpus, args.targets)
    exporters = [FakeExporter(t) for t in texts]
    server = PrometheusServer(
        root / "prometheus", [ScrapeJob("dcgm", [e.address for e in exporters])]
    )
    # A big scrape every second would measure Prometheus' ingestion, not our poll.
    server_config = server._config
    server._config = lambda: (
        server_config()
        .replace("scrape_interval: 1s", "scrape_interval: 15s")
        .replace("scrape_timeout: 1s", "scrape_timeout: 10s")
    )
    results: dict[str, tuple] = {}
    try:
        server.start()
        total = args.nodes * args.gpus
        wait_for(
            lambda: (
                (r := server.query("count(DCGM_FI_DEV_FB_USED)")) and int(r[0]["value"][1]) == total
            ),
            120,
            f"{total} GPUs in Prometheus",
            interval_s=0.5,
        )
        probe = PrometheusProbe(SourceConfig(kind="prometheus", url=server.url), NoSecrets())
        snaps = probe.poll()
        assert len(snaps) == args.nodes and all(s.ok for s in snaps), snaps[0].message
        assert sum(len(s.gpus) for s in snaps) == total
        times = timed(probe.poll, args.rounds)
        wire = probe.last_response_bytes
        results["prometheus: one instant query (gzip)"] = (times, wire, _json_size(server, probe))

        # The naive client: one query per metric, no compression, the same parsing.
        def per_metric() -> int:
            size = 0
            series = []
            for metric in QUERY_METRICS:
                q = urllib.parse.urlencode({"query": metric})
                with urllib.request.urlopen(f"{server.url}/api/v1/query?{q}", timeout=30) as r:
                    body = r.read()
                size += len(body)
                series.extend(series_from_query(body).series)
            hosts = build_hosts(series, time.time(), 90.0)
            assert sum(len(h.gpus) for h in hosts.values()) == total
            return size

        size = per_metric()
        results["prometheus: one query per metric, no gzip"] = (
            timed(per_metric, args.rounds),
            size,
            size,
        )
    finally:
        server.stop()
        for e in exporters:
            e.stop()
    return results


def _json_size(server: PrometheusServer, probe: PrometheusProbe) -> int:
    q = urllib.parse.urlencode({"query": probe.query})
    req = urllib.request.Request(
        f"{server.url}/api/v1/query?{q}", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        return (
            len(gzip.decompress(body)) if r.headers.get("Content-Encoding") == "gzip" else len(body)
        )


def ssh_part(args: argparse.Namespace) -> dict[str, tuple] | str:
    if reason := skip_reason("sshd", need_root=True):
        return reason
    from gpu_tray.core.settings import HostConfig
    from gpu_tray.sources.ssh.host_keys import KnownHosts
    from gpu_tray.sources.ssh.nvsmi import POLL_COMMAND
    from gpu_tray.sources.ssh.probe import SshProbe
    from gpu_tray.sources.ssh.session import SshSession
    from tests.harness.sshd import Sshd, install_fast_nvidia_smi, make_world

    world = make_world()
    install_fast_nvidia_smi(world, gpus=args.gpus)
    servers = [
        Sshd(world, address=f"127.0.1.{i + 1}").start() for i in range(min(10, args.ssh_hosts))
    ]
    try:
        known_file = world.base / "known_hosts"
        known_file.write_text("".join(s.known_hosts_line() for s in servers))
        known = KnownHosts(files=[known_file], app_file=world.base / "app_known_hosts")
        hosts = [
            HostConfig(
                f"node{i}",
                hostname=servers[i % len(servers)].address,
                port=servers[i % len(servers)].port,
                user=world.user,
                identity_file=str(world.client_key),
            )
            for i in range(args.ssh_hosts)
        ]
        sessions = [SshSession(h, NoSecrets(), known_hosts=known) for h in hosts]
        probes = [SshProbe(h, NoSecrets(), session=s) for h, s in zip(hosts, sessions, strict=True)]
        pool = ThreadPoolExecutor(max_workers=len(probes))  # the poller: a worker per host

        def one_round() -> None:
            for snaps in pool.map(lambda p: p.poll(), probes):
                assert snaps[0].ok and len(snaps[0].gpus) == args.gpus, snaps[0].message

        times = timed(one_round, args.rounds)
        payload = sum(len(s.run(POLL_COMMAND, 30).stdout) for s in sessions)
        pool.shutdown()
        for p in probes:
            p.close()
        return {f"ssh: {args.ssh_hosts} hosts, persistent connections": (times, payload, payload)}
    finally:
        for s in servers:
            s.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--ssh-hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if reason := skip_reason("prometheus"):
        print(f"benchmarks/sources.py cannot run: {reason}", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="gpu-tray-bench-sources-"))
    print(
        f"Generating {args.nodes} nodes x {args.gpus} GPUs of DCGM series "
        f"on {args.targets} targets; starting Prometheus ...",
        flush=True,
    )
    prom = prometheus_part(args, root)
    ssh = ssh_part(args)
    scale = args.nodes / args.ssh_hosts
    total = args.nodes * args.gpus
    print(
        f"\nOne poll of {args.nodes} nodes x {args.gpus} GPUs = {total} GPUs "
        f"({os.cpu_count()} CPUs, everything on loopback, {args.rounds} rounds)\n"
    )
    head = (
        f"{'method':<50} {'median ms':>10} {'max ms':>9} {'wire bytes':>12} {'decoded bytes':>14}"
    )
    print(head)
    print("-" * len(head))
    rows = dict(prom)
    if isinstance(ssh, dict):
        for name, (times, wire, decoded) in ssh.items():
            rows[name] = (times, wire, decoded)
            scaled = [t * scale for t in times]
            rows[f"ssh: scaled x{scale:g} to {args.nodes} hosts (linear)"] = (
                scaled,
                int(wire * scale),
                int(decoded * scale),
            )
    for name, (times, wire, decoded) in rows.items():
        median = statistics.median(times)
        print(f"{name:<50} {median:>10.1f} {max(times):>9.1f} {wire:>12,} {decoded:>14,}")
    ours_name = "prometheus: one instant query (gzip)"
    ours = statistics.median(prom[ours_name][0])
    print()
    print(
        f"Target: one Prometheus poll of {total} GPUs in under 1 s: "
        f"{'MET' if ours < 1000 else 'MISSED'} ({ours:.0f} ms median)"
    )
    if isinstance(ssh, dict):
        [(times, wire, _)] = ssh.values()
        ssh_ms, ssh_bytes = statistics.median(times) * scale, wire * scale
        print(
            f"SSH scaled to {args.nodes} hosts / Prometheus: time x{ssh_ms / ours:.1f}, "
            f"bytes x{ssh_bytes / prom[ours_name][1]:.1f} "
            f"(SSH bytes are command output only, without SSH's own framing)"
        )
    else:
        print(f"SSH baseline not run: {ssh}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
