"""A real Prometheus scraping real DCGM texts: `gpu-tray status --json` follows the served
text from busy to free; an exporter or Prometheus going away gives typed states."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.availability import host_units
from gpu_tray.core.settings import FreeThresholds, SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.prometheus.probe import PrometheusProbe
from tests.harness.procs import skip_reason, wait_for
from tests.harness.prometheus import (
    BINARY,
    FakeExporter,
    PrometheusServer,
    ScrapeJob,
    exposition_text,
)

pytestmark = [pytest.mark.engines, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BUSY_MIG = "dcgm_metrics_a100_mig_1g5gb_active_runai.ini"  # MIG 1g.5gb #9: 4384 MiB used
IDLE_MIG = "dcgm_metrics_a100_mig_1g5gb_idle_allocated_runai.ini"  # MIG 1g.5gb #8: 6 MiB used
POD_HELD = "dcgm_metrics_rtx4000ada_k8s_pod_labels_lke.txt"  # held by pod default/cuda-...
LKE = "lke529760-766837-0a634ab30000"


class Cluster:
    def __init__(self, root: Path) -> None:
        self.a = FakeExporter(exposition_text(BUSY_MIG))
        self.b = FakeExporter(exposition_text(POD_HELD))
        # The runai captures name the exporter pod in Hostname, and it changes when
        # the pod restarts; a site relabels Hostname to the node, as done here.
        self.prom = PrometheusServer(
            root / "prometheus",
            [
                ScrapeJob("dcgm-a", [self.a.address], {"Hostname": "gpu-a"}),
                ScrapeJob("dcgm-b", [self.b.address]),
            ],
        )
        self.root = root

    def start(self) -> Cluster:
        self.prom.start()
        self.prom.wait_for_series('DCGM_FI_DEV_FB_USED{Hostname="gpu-a"}')
        self.prom.wait_for_series(f'DCGM_FI_DEV_FB_USED{{Hostname="{LKE}"}}')
        return self

    def serve_a(self, name: str, fb_used: int) -> None:
        """Swap exporter A's text and wait until Prometheus answers with it."""
        self.a.serve(exposition_text(name))
        self.prom.wait_for_series(f'DCGM_FI_DEV_FB_USED{{Hostname="gpu-a"}} == {fb_used}')
        # The old MIG row must have gone stale too (a staleness marker at the next scrape).
        wait_for(
            lambda: len(self.prom.query('DCGM_FI_DEV_FB_USED{Hostname="gpu-a"}')) == 1,
            15,
            "the old MIG series to go stale",
            interval_s=0.2,
        )

    def config(self, watch: str = "") -> Path:
        cfg = self.root / "config.toml"
        cfg.write_text(
            f'poll_interval_s = 1\n\n[[sources]]\nkind = "prometheus"\nurl = "{self.prom.url}"\n'
            f"timeout_s = 5\n\n{watch}"
        )
        return cfg

    def stop(self) -> None:
        self.prom.stop()
        self.a.stop()
        self.b.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if reason := skip_reason(BINARY):
        pytest.skip(reason)
    c = Cluster(tmp_path_factory.mktemp("prom"))
    try:
        yield c.start()
    finally:
        c.stop()


def status_json(cfg: Path) -> tuple[int, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPU_TRAY_CONFIG": str(cfg)}
    out = subprocess.run(
        [sys.executable, "-m", "gpu_tray", "status", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stderr == ""
    return out.returncode, json.loads(out.stdout)


def test_status_follows_the_served_text_from_busy_to_free(cluster: Cluster) -> None:
    cfg = cluster.config()
    rc, doc = status_json(cfg)
    assert rc == 0
    assert (doc["free_gpus"], doc["total_gpus"]) == (0, 2)
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert list(hosts) == ["gpu-a", LKE]
    assert {h["source"] for h in doc["hosts"]} == {"prometheus"}
    [a100] = hosts["gpu-a"]["gpus"]
    assert (a100["name"], a100["uuid"]) == (
        "NVIDIA A100-SXM4-40GB",
        "GPU-7099682b-a20d-2bcc-74ab-b9060454d81e",
    )
    assert [
        (m["profile"], m["memory_used_mib"], m["memory_total_mib"]) for m in a100["mig_devices"]
    ] == [("1g.5gb", 4384, 4864)]
    assert a100["utilization_pct"] is None and a100["free"] is False
    [ada] = hosts[LKE]["gpus"]
    assert ada["processes"] == [
        {
            "pid": None,
            "user": "default/cuda-75454ffb9f-8ljq7",
            "name": "cuda",
            "used_memory_mib": None,
        }
    ]
    assert ada["free"] is False

    cluster.serve_a(IDLE_MIG, 6)
    rc, doc = status_json(cfg)
    assert rc == 0
    assert (doc["free_gpus"], doc["total_gpus"]) == (1, 2)
    [a100] = {h["name"]: h for h in doc["hosts"]}["gpu-a"]["gpus"]
    assert [(m["profile"], m["memory_used_mib"]) for m in a100["mig_devices"]] == [("1g.5gb", 6)]
    assert a100["free"] is True

    cluster.serve_a(BUSY_MIG, 4384)
    rc, doc = status_json(cfg)
    assert (doc["free_gpus"], doc["total_gpus"]) == (0, 2)


def test_a_watch_rule_follows_the_served_text(cluster: Cluster) -> None:
    """The tray's hysteresis over the real Prometheus: a rule on gpu-a is quiet while
    its MIG unit is busy, and fires exactly once after it frees and stays free."""
    from gpu_tray.core.rules import RuleEngine
    from gpu_tray.core.settings import Config, WatchSpec

    cluster.serve_a(BUSY_MIG, 4384)
    probe = PrometheusProbe(SourceConfig(kind="prometheus", url=cluster.prom.url), NoSecrets())
    engine = RuleEngine([WatchSpec(host="gpu-a")], Config().thresholds_for, 2)
    fired = []

    def poll() -> None:
        for snap in probe.poll():
            fired.extend(engine.observe(snap))

    for _ in range(3):
        poll()
    assert fired == []
    cluster.serve_a(IDLE_MIG, 6)
    for _ in range(4):
        poll()
    [firing] = fired
    assert firing.host == "gpu-a"
    assert firing.lines == ["gpu-a: GPU 0 MIG 0 (A100 40GB MIG 1g.5gb) is free, 4.7 GiB"]
    cluster.serve_a(BUSY_MIG, 4384)  # as the other tests expect it


def test_a_series_that_stops_updating_is_stale_not_free(cluster: Cluster) -> None:
    """An exporter that keeps serving one timestamped sample: Prometheus writes no
    staleness marker, the instant query keeps returning it, and only its sample time
    shows it is old."""
    cluster.serve_a(IDLE_MIG, 6)
    probe = PrometheusProbe(
        SourceConfig(kind="prometheus", url=cluster.prom.url, options={"stale_after_s": 2}),
        NoSecrets(),
    )
    assert {s.name: s.ok for s in probe.poll()} == {"gpu-a": True, LKE: True}
    # A little ahead of the last scrape, so the first stamped sample is not out of order.
    frozen_at_ms = int(time.time() * 1000) + 1500
    stamped = "".join(
        f"{line} {frozen_at_ms}\n" if line and not line.startswith("#") else f"{line}\n"
        for line in exposition_text(IDLE_MIG).splitlines()
    )
    cluster.a.serve(stamped)
    wait_for(
        lambda: (
            cluster.prom.query('timestamp(DCGM_FI_DEV_FB_USED{Hostname="gpu-a"})')[0]["value"][1]
            == f"{frozen_at_ms / 1000:.3f}".rstrip("0").rstrip(".")
        ),
        15,
        "the timestamped sample",
        interval_s=0.2,
    )
    snap = wait_for(
        lambda: next(s for s in probe.poll() if s.name == "gpu-a" and not s.ok), 15, "staleness"
    )
    assert snap.state.value == "timeout" and snap.stale
    assert re.fullmatch(
        r"No new DCGM sample from gpu-a for \d+ s; showing the last one", snap.message
    )
    assert snap.gpus[0].fault.startswith("stale: no new sample for ")
    assert [u.free for u in host_units(snap, FreeThresholds())] == [False]
    cluster.a.serve(exposition_text(BUSY_MIG))
    wait_for(
        lambda: all(s.ok for s in probe.poll()),
        15,
        "fresh samples again",
        on_timeout=lambda: repr([(s.name, s.state, s.message, s.gpus) for s in probe.poll()]),
    )


def test_an_exporter_that_stops_is_unreachable(cluster: Cluster) -> None:
    probe = PrometheusProbe(SourceConfig(kind="prometheus", url=cluster.prom.url), NoSecrets())
    assert [(s.name, s.state.value) for s in probe.poll()] == [("gpu-a", "ok"), (LKE, "ok")]
    cluster.b.stop()
    # Prometheus marks the series stale at the first failed scrape; then they vanish.
    wait_for(
        lambda: not cluster.prom.query(f'DCGM_FI_DEV_FB_USED{{Hostname="{LKE}"}}'), 15, "staleness"
    )
    snaps = {s.name: s for s in probe.poll()}
    assert snaps["gpu-a"].ok
    assert (snaps[LKE].state.value, snaps[LKE].message) == (
        "unreachable",
        f"Prometheus at {cluster.prom.url} has no current DCGM data for {LKE} "
        "(its exporter is down or no longer scraped)",
    )


def test_prometheus_stopped(cluster: Cluster) -> None:
    """Last in this module: it stops the engine."""
    probe = PrometheusProbe(SourceConfig(kind="prometheus", url=cluster.prom.url), NoSecrets())
    probe.poll()
    cluster.prom.stop()
    message = f"Cannot connect to Prometheus at {cluster.prom.url}: connection refused"
    assert [(s.name, s.state.value, s.message) for s in probe.poll()] == [
        ("gpu-a", "unreachable", message)
    ]
    rc, doc = status_json(cluster.config())
    assert rc == 1
    assert [(h["name"], h["state"], h["error"], h["gpus"]) for h in doc["hosts"]] == [
        (f"prometheus:127.0.0.1:{cluster.prom.port}", "unreachable", message, [])
    ]
    assert (doc["free_gpus"], doc["total_gpus"]) == (0, 0)
