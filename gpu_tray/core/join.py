"""Join a scheduler's view of a node (Slurm) with a measurement of it (SSH, Prometheus).

Slurm knows which GPUs it handed out; nvidia-smi or DCGM know what the GPUs are
doing. When both report the same node, the user sees one host: the measured
GPUs, each with Slurm's `allocated`, and a note where the two disagree:
"allocated but idle" (a job holds it and does nothing) or "busy outside Slurm"
(something runs on a GPU Slurm thinks is free). Qt-free and pure: the app calls
`join_snapshots` on the latest snapshot of every probe before summarising or
painting, and `gpu-tray status` on the list a poll returned.

Node names are matched exactly, then by their short name (`gpu01.cluster.org`
is `gpu01`), case-insensitively. GPUs are matched by index: Slurm's GRES index
is the /dev/nvidiaN minor number, which is nvidia-smi's index on nodes whose
gres.conf lists the devices in order (the usual AutoDetect=nvml setup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from gpu_tray.core.availability import is_gpu_free
from gpu_tray.core.models import GpuSample, HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds

SCHEDULER_SOURCES = frozenset({"slurm"})
ALLOCATED_BUT_IDLE = "allocated but idle"
BUSY_OUTSIDE_SLURM = "busy outside Slurm"


def short_name(name: str) -> str:
    return name.split(".", 1)[0].lower()


def join_snapshots(snaps: Iterable[HostSnapshot]) -> list[HostSnapshot]:
    """One snapshot per host, in the order hosts first appear.

    A scheduler snapshot with a measured twin is folded into it: the twin keeps its
    state, readings and processes, and takes `allocated` per GPU and `node_state`
    from the scheduler (while the scheduler's own poll is OK). If the twin has no
    GPUs yet (it never answered), the scheduler's GPUs are used. Scheduler
    snapshots with no twin pass through unchanged."""
    snaps = list(snaps)
    measured = [s for s in snaps if s.source not in SCHEDULER_SOURCES]
    exact = {s.name: s for s in measured}
    short: dict[str, HostSnapshot | None] = {}
    for s in measured:
        key = short_name(s.name)
        # Two measured hosts with the same short name: ambiguous, join neither.
        short[key] = None if key in short else s
    folded: dict[str, HostSnapshot] = {}  # measured name -> scheduler snapshot
    passthrough: set[int] = set()
    for i, s in enumerate(snaps):
        if s.source not in SCHEDULER_SOURCES:
            continue
        twin = exact.get(s.name) or short.get(short_name(s.name))
        if twin is None or twin.name in folded:
            passthrough.add(i)
        else:
            folded[twin.name] = s
    out: list[HostSnapshot] = []
    for i, s in enumerate(snaps):
        if s.source in SCHEDULER_SOURCES:
            if i in passthrough:
                out.append(s)
        elif s.name in folded:
            out.append(merge(s, folded[s.name]))
        else:
            out.append(s)
    return out


def merge(measured: HostSnapshot, scheduler: HostSnapshot) -> HostSnapshot:
    source = f"{measured.source}+{scheduler.source}"
    if scheduler.state is not HostState.OK:
        return replace(measured, source=source)
    if not measured.gpus:
        return replace(
            measured, gpus=scheduler.gpus, node_state=scheduler.node_state, source=source
        )
    by_index = {g.index: g for g in scheduler.gpus}
    gpus = tuple(_merge_gpu(g, by_index.get(g.index)) for g in measured.gpus)
    return replace(measured, gpus=gpus, node_state=scheduler.node_state, source=source)


def _merge_gpu(measured: GpuSample, scheduled: GpuSample | None) -> GpuSample:
    if scheduled is None:
        return measured
    # Slurm's job entries are not added to the processes: the measured ones are
    # the truth about what runs, and "busy" must mean busy on the GPU.
    return replace(
        measured,
        allocated=scheduled.allocated,
        fault=measured.fault or scheduled.fault,
        expected_free_at=scheduled.expected_free_at,
    )


def gpu_note(gpu: GpuSample, limits: FreeThresholds) -> str | None:
    """Where the scheduler and the measurement disagree about a joined GPU."""
    if gpu.allocated is None or gpu.memory_used_mib is NA:
        return None  # not joined, or nothing measured
    idle = is_gpu_free(replace(gpu, allocated=None, fault=None), limits)
    if gpu.allocated and idle:
        return ALLOCATED_BUT_IDLE
    if not gpu.allocated and not idle:
        return BUSY_OUTSIDE_SLURM
    return None


def host_notes(snap: HostSnapshot, limits_for: Callable[[str], FreeThresholds]) -> dict[int, str]:
    """GPU index -> note, for the menu and `status`."""
    limits = limits_for(snap.name)
    notes = {}
    for gpu in snap.gpus:
        if note := gpu_note(gpu, limits):
            notes[gpu.index] = note
    return notes
