"""Replayed traces: one host, one GPU, polled every 60 s, as the poller builds snapshots.

Each trace is (minute, utilisation %, processes as (pid, user)) per poll. T0 is a
fixed instant so every expected `idle_since` is an exact string.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOST = "gpu-node1"

Poll = tuple[int, int | None, tuple[tuple[int, str], ...]]


def gpu(index: int, util: int | None, procs: tuple[tuple[int, str], ...]) -> GpuSample:
    from gpu_tray.core.na import NA

    return GpuSample(
        index=index,
        uuid=f"GPU-{index}",
        name="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        memory_used_mib=7484 if procs else 1,
        utilization_pct=NA if util is None else util,
        temperature_c=40,
        power_w=70.0,
        processes=tuple(
            GpuProcess(pid=pid, name="python train.py", used_memory_mib=7484, user=user)
            for pid, user in procs
        ),
    )


def snapshots(trace: list[Poll], host: str = HOST, index: int = 0) -> list[HostSnapshot]:
    return [
        HostSnapshot(
            host,
            HostState.OK,
            polled_at=T0 + timedelta(minutes=minute),
            latency_ms=5.0,
            gpus=(gpu(index, util, procs),),
            data_at=T0 + timedelta(minutes=minute),
        )
        for minute, util, procs in trace
    ]


ALICE = ((4242, "alice.longname"),)

#: A process at 0 % from minute 0 to minute 45: held idle since 09:00 once 30 min pass.
IDLE = [(m, 0, ALICE) for m in range(0, 46)]
#: The same, but one poll at 40 % at minute 20: the stretch restarts at minute 21.
BLIP = [(m, 40 if m == 20 else 0, ALICE) for m in range(0, 61)]
#: A process at 97 % all along: never idle.
BUSY = [(m, 97, ALICE) for m in range(0, 61)]
