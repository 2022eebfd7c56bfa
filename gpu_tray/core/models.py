"""Immutable records that flow from sources to the UI, the store and the CLI.

A snapshot is built once per poll on a worker thread and never changed
after, so it can cross to the GUI thread without locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from gpu_tray.core.na import NA, NotAvailable

MaybeInt = int | NotAvailable
MaybeFloat = float | NotAvailable


class HostState(StrEnum):
    """Shared by the CLI, the tray and the history. Values are public (status --json)."""

    OK = "ok"
    CONNECTING = "connecting"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    NVIDIA_SMI_MISSING = "nvidia_smi_missing"
    NVIDIA_SMI_ERROR = "nvidia_smi_error"
    BAD_OUTPUT = "bad_output"

    @property
    def needs_user(self) -> bool:
        """States that retrying cannot fix: the user must change something first."""
        return self in _NEEDS_USER


_NEEDS_USER = frozenset(
    {HostState.AUTH_FAILED, HostState.HOST_KEY_UNKNOWN, HostState.HOST_KEY_CHANGED}
)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process on a GPU (or, for Kubernetes sources, the pod holding it)."""

    pid: int | None
    name: str
    used_memory_mib: MaybeInt = NA
    # None when the owner is not visible (another container, hidepid, gone).
    user: str | None = None
    # MIG: which GPU/compute instance the process runs in.
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True, slots=True)
class MigDevice:
    """One MIG instance of a MIG-enabled GPU. On such a GPU these are the units."""

    index: int
    uuid: str
    profile: str  # e.g. "3g.40gb"
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    memory_total_mib: MaybeInt = NA
    memory_used_mib: MaybeInt = NA
    processes: tuple[GpuProcess, ...] = ()

    @property
    def memory_free_mib(self) -> MaybeInt:
        return self.memory_total_mib - self.memory_used_mib  # NA-safe


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    uuid: str
    name: str
    memory_total_mib: MaybeInt = NA
    memory_used_mib: MaybeInt = NA
    utilization_pct: MaybeInt = NA
    temperature_c: MaybeInt = NA
    power_w: MaybeFloat = NA
    pci_bus_id: str = ""
    mig_enabled: bool = False
    mig_devices: tuple[MigDevice, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    # Set by scheduler-backed sources (Slurm): True when the scheduler has
    # handed this GPU to a job, whatever the GPU itself is doing.
    allocated: bool | None = None
    # A reading the source flags as unusable: nvidia-smi's "GPU requires reset",
    # "GPU is lost", "Unknown Error"; a stale series; a drained node. Never free.
    fault: str | None = None
    # Whether `processes` is the whole list: True when the source listed the compute
    # processes and read every row; False when it tried and could not (PIDs shown as
    # "[Insufficient Permissions]", rows it cannot tell apart); None for sources
    # that list no processes at all (DCGM, Slurm), which decide on memory.
    processes_known: bool | None = None
    # Set by scheduler-backed sources (Slurm): when the jobs holding this GPU reach
    # their end time (squeue's EndTime), UTC; None when unknown or not held.
    expected_free_at: datetime | None = None

    @property
    def memory_free_mib(self) -> MaybeInt:
        return self.memory_total_mib - self.memory_used_mib

    @property
    def users(self) -> tuple[str, ...]:
        """Distinct owners, in order of first appearance; unknown owners are skipped."""
        seen: dict[str, None] = {}
        procs = list(self.processes)
        for mig in self.mig_devices:
            procs.extend(mig.processes)
        for p in procs:
            if p.user:
                seen.setdefault(p.user, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class HostKeyInfo:
    """The key a host offered when it was not trusted: what the trust dialog shows and saves.

    Carried by `host_key_unknown` and `host_key_changed` snapshots, so that
    "Trust" records exactly the key the user was shown, not one fetched again.
    """

    host_id: str  # as known_hosts names it: "node3", or "[node3]:2222" off port 22
    key_type: str  # "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
    fingerprint: str  # "SHA256:" + unpadded base64, as `ssh-keygen -lf` prints it
    key_base64: str  # the public key (not a secret), as in a known_hosts line
    # For a changed key: what we trusted before, and where that line is.
    known_fingerprint: str | None = None
    known_file: str | None = None
    known_line: int | None = None


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """One file system as `df -P -k PATH` sees it. None: unknown (a missing path, df failed)."""

    path: str
    total_mib: int | None = None
    used_mib: int | None = None
    # What a non-root user may still write; df's "Capacity" is used / (used + avail).
    avail_mib: int | None = None

    @property
    def used_pct(self) -> float | None:
        """As df prints it: blocks reserved for root count as neither used nor free."""
        if self.used_mib is None:
            return None
        if self.avail_mib is not None and self.used_mib + self.avail_mib > 0:
            return 100.0 * self.used_mib / (self.used_mib + self.avail_mib)
        if self.total_mib:
            return 100.0 * self.used_mib / self.total_mib
        return None


#: A host is marked when its RAM or any disk is fuller than this (per cent).
HEALTH_LIMIT_PCT = 90.0


@dataclass(frozen=True, slots=True)
class HostHealth:
    """Load, memory and disks of a host, read in the same exec as its GPUs.

    Every value may be None (unknown): a host without /proc, a df that failed.
    Unknown is never an error for the host.
    """

    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    cpus: int | None = None
    mem_total_mib: int | None = None
    mem_used_mib: int | None = None  # MemTotal - MemAvailable
    disks: tuple[DiskUsage, ...] = ()

    @property
    def mem_pct(self) -> float | None:
        if self.mem_used_mib is None or not self.mem_total_mib:
            return None
        return 100.0 * self.mem_used_mib / self.mem_total_mib

    def warnings(self, limit_pct: float = HEALTH_LIMIT_PCT) -> tuple[str, ...]:
        """Why this host needs a look, in words: "RAM 95% full", "/home 97% full"."""
        out = []
        mem = self.mem_pct
        if mem is not None and mem > limit_pct:
            out.append(f"RAM {mem:.0f}% full")
        for disk in self.disks:
            pct = disk.used_pct
            if pct is not None and pct > limit_pct:
                out.append(f"{disk.path} {pct:.0f}% full")
        return tuple(out)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """Everything known about one host after one poll.

    When a poll fails, the poller keeps the last good ``gpus`` with
    ``stale=True`` and ``data_at`` telling how old they are.
    """

    name: str
    state: HostState
    message: str | None = None
    polled_at: datetime = field(default_factory=utcnow)
    latency_ms: float | None = None
    gpus: tuple[GpuSample, ...] = ()
    source: str = "ssh"
    stale: bool = False
    data_at: datetime | None = None
    # Scheduler view (Slurm): node state such as "idle", "mixed", "drain".
    node_state: str | None = None
    # Set with host_key_unknown / host_key_changed.
    host_key: HostKeyInfo | None = None
    # Load, RAM and disks, read by this very poll (None: unknown, or not read).
    health: HostHealth | None = None

    @property
    def ok(self) -> bool:
        return self.state is HostState.OK

    def age_s(self, now: datetime | None = None) -> float | None:
        if self.data_at is None:
            return None
        return ((now or utcnow()) - self.data_at).total_seconds()

    def as_stale(self, failed: HostSnapshot) -> HostSnapshot:
        """`failed` carrying this snapshot's GPUs, marked stale.

        Health is never carried over: `failed` keeps the health its own poll read
        (a host whose nvidia-smi fails still reports its RAM), so a health value is
        always as fresh as its `polled_at`, and history stores each reading once."""
        return replace(
            failed,
            gpus=self.gpus,
            stale=True,
            data_at=self.data_at or self.polled_at,
            node_state=self.node_state,
        )
