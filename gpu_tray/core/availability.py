"""What "free" means, and the cluster summary the tray icon is painted from."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gpu_tray.core.models import GpuSample, HostSnapshot, HostState, MigDevice
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds

ThresholdsFor = Callable[[str], FreeThresholds]


def is_gpu_free(gpu: GpuSample, limits: FreeThresholds) -> bool:
    """A whole (non-MIG) GPU, decided from what is known (README, "What free means").

    - A fault, a scheduler allocation, any compute process, or a process list
      that could not be read: not free.
    - Memory known: at most `max_memory_mib` used, and utilisation at most
      `max_utilization_pct` or unknown (MIG, some vGPUs never report it).
    - Memory unknown (unified memory: GB10 / DGX Spark, Jetson; some vGPUs): free
      only when the process list was read and is empty and utilisation is known
      and low. With neither memory nor utilisation known there is nothing to go on.
    """
    if gpu.fault or gpu.allocated or gpu.processes or gpu.processes_known is False:
        return False
    util_ok = gpu.utilization_pct is NA or gpu.utilization_pct <= limits.max_utilization_pct
    if gpu.memory_used_mib is NA:
        if gpu.allocated is False:
            # A scheduler says it is not allocated and nothing measured it: from
            # Slurm alone, free means "not allocated".
            return True
        return gpu.processes_known is True and gpu.utilization_pct is not NA and util_ok
    return gpu.memory_used_mib <= limits.max_memory_mib and util_ok


def is_mig_free(mig: MigDevice, limits: FreeThresholds) -> bool:
    """MIG devices never report utilisation: unknown memory leaves nothing to go on."""
    if mig.processes:
        return False
    return mig.memory_used_mib is not NA and mig.memory_used_mib <= limits.max_memory_mib


def unit_usable(gpu: GpuSample) -> bool:
    """The parent GPU lets its MIG devices be free: no fault, no allocation, and a
    process list that was read (a process we could not place might be on any of them)."""
    return not gpu.fault and not gpu.allocated and gpu.processes_known is not False


@dataclass(frozen=True, slots=True)
class Unit:
    """A schedulable unit: a whole GPU, or one MIG device of a MIG-enabled GPU."""

    host: str
    gpu_index: int
    mig_index: int | None
    model: str
    memory_total_mib: object
    memory_free_mib: object
    free: bool
    mig_uuid: str | None = None

    @property
    def label(self) -> str:
        if self.mig_index is None:
            return f"GPU {self.gpu_index}"
        return f"GPU {self.gpu_index} MIG {self.mig_index}"

    @property
    def cuda_id(self) -> str:
        """What goes in CUDA_VISIBLE_DEVICES: a MIG device is selected by its UUID."""
        return self.mig_uuid if self.mig_uuid else str(self.gpu_index)


def host_units(snap: HostSnapshot, limits: FreeThresholds) -> list[Unit]:
    """Units on a host. Stale or failed hosts report no free units: old data is not a promise."""
    usable = snap.state is HostState.OK and not snap.stale
    units: list[Unit] = []
    for gpu in snap.gpus:
        if gpu.mig_enabled and gpu.mig_devices:
            for mig in gpu.mig_devices:
                units.append(
                    Unit(
                        snap.name,
                        gpu.index,
                        mig.index,
                        f"{gpu.name} MIG {mig.profile}",
                        mig.memory_total_mib,
                        mig.memory_free_mib,
                        usable and unit_usable(gpu) and is_mig_free(mig, limits),
                        mig_uuid=mig.uuid or None,
                    )
                )
        else:
            units.append(
                Unit(
                    snap.name,
                    gpu.index,
                    None,
                    gpu.name,
                    gpu.memory_total_mib,
                    gpu.memory_free_mib,
                    usable and is_gpu_free(gpu, limits),
                )
            )
    return units


def cluster_units(snaps: Iterable[HostSnapshot], limits_for: ThresholdsFor) -> list[Unit]:
    out: list[Unit] = []
    for snap in snaps:
        out.extend(host_units(snap, limits_for(snap.name)))
    return out


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """What the tray icon and tooltip are painted from."""

    free: int
    total: int
    hosts_total: int
    hosts_failing: int
    hosts_stale: int
    # Free units that match at least one watch rule; None when there are no rules.
    free_watched: int | None = None
    paused: bool = False
    # GPUs with a fault on hosts that answered: they need someone's attention.
    gpus_faulty: int = 0

    @property
    def needs_attention(self) -> bool:
        """Failing hosts or faulty GPUs: the icon's "!" mark."""
        return self.hosts_failing > 0 or self.gpus_faulty > 0

    @property
    def no_data(self) -> bool:
        return self.total == 0 or self.hosts_failing == self.hosts_total

    @property
    def colour(self) -> str:
        """ "grey" | "red" | "amber" | "green", as DESIGN.md defines them."""
        if self.hosts_total == 0 or self.hosts_failing == self.hosts_total or self.total == 0:
            return "grey"
        if self.free == 0:
            return "red"
        if self.free_watched is not None and self.free_watched == 0:
            return "amber"
        return "green"


_NOT_FAILING = frozenset({HostState.OK, HostState.CONNECTING})


def summarize(
    snaps: Sequence[HostSnapshot],
    limits_for: ThresholdsFor,
    watched: Callable[[Unit], bool] | None = None,
    paused: bool = False,
) -> ClusterSummary:
    units = cluster_units(snaps, limits_for)
    free_units = [u for u in units if u.free]
    return ClusterSummary(
        free=len(free_units),
        total=len(units),
        hosts_total=len(snaps),
        # Still connecting is not failing: the "!" mark would flash at every start.
        hosts_failing=sum(1 for s in snaps if s.state not in _NOT_FAILING),
        hosts_stale=sum(1 for s in snaps if s.stale),
        free_watched=None if watched is None else sum(1 for u in free_units if watched(u)),
        paused=paused,
        gpus_faulty=sum(1 for s in snaps if s.ok for g in s.gpus if g.fault),
    )
