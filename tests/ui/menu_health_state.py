"""A small cluster with host health for the menu tests and the menu screenshot: one host
over 90 % RAM, one healthy with a custom disk, one whose health is unknown, one down."""

from __future__ import annotations

from datetime import UTC, datetime

from gpu_tray.core.availability import summarize
from gpu_tray.core.models import (
    DiskUsage,
    GpuProcess,
    GpuSample,
    HostHealth,
    HostSnapshot,
    HostState,
)
from gpu_tray.core.settings import Config
from gpu_tray.presenter.tray_state import TrayState

NOW = datetime(2026, 11, 23, 14, 32, tzinfo=UTC)
CONFIG = Config()
A100 = "NVIDIA A100-SXM4-80GB"


def _gpu(index: int, user: str | None) -> GpuSample:
    procs = (GpuProcess(4242 + index, "python train.py", 40400, user),) if user else ()
    return GpuSample(
        index,
        f"GPU-{index}",
        A100,
        memory_total_mib=81920,
        memory_used_mib=40960 if user else 3,
        utilization_pct=97 if user else 0,
        processes=procs,
    )


FULL = HostHealth(
    load1=31.5,
    load5=30.0,
    load15=28.2,
    cpus=64,
    mem_total_mib=524288,  # 512 GiB
    mem_used_mib=503316,  # 96 %
    disks=(
        DiskUsage("/", 460800, 184320, 253440),
        DiskUsage("/scratch", 4194304, 2936012, 1258291),
    ),
)
FINE = HostHealth(
    load1=2.25,
    cpus=32,
    mem_total_mib=262144,
    mem_used_mib=65536,
    disks=(DiskUsage("/", 460800, 92160, 345600), DiskUsage("/home", 921600, 875520, 46080)),
)


def snapshots() -> tuple[HostSnapshot, ...]:
    def snap(name: str, gpus: tuple[GpuSample, ...], health: HostHealth | None) -> HostSnapshot:
        return HostSnapshot(
            name, HostState.OK, polled_at=NOW, gpus=gpus, data_at=NOW, health=health
        )

    return (
        snap("node3", (_gpu(0, None), _gpu(1, "priya.raman")), FULL),
        snap("node7", (_gpu(0, "mchen"),), FINE),
        snap("node8", (_gpu(0, None),), HostHealth(disks=(DiskUsage("/"),))),
        HostSnapshot("node9", HostState.TIMEOUT, "No answer from node9 within 10 s", polled_at=NOW),
    )


def state() -> TrayState:
    snaps = snapshots()
    return TrayState(snaps, summarize(snaps, CONFIG.thresholds_for), CONFIG.thresholds_for)
