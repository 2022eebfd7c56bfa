"""The built-in simulated cluster: what a newcomer sees with no configuration.

Deterministic: the state of every GPU is a pure function of the seed and the
time, so the live demo, the backfilled history and the tests all agree. Jobs
start and finish, the cluster is busier in working hours than at night (so
"when is it usually free" has an answer), and one host is flaky.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from gpu_tray.core.models import (
    DiskUsage,
    GpuProcess,
    GpuSample,
    HostHealth,
    HostSnapshot,
    HostState,
    MigDevice,
)

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class DemoGpuModel:
    name: str
    memory_mib: int
    tdp_w: float
    idle_w: float


A100 = DemoGpuModel("NVIDIA A100-SXM4-80GB", 81920, 400.0, 62.0)
H100 = DemoGpuModel("NVIDIA H100 80GB HBM3", 81559, 700.0, 70.0)
L40S = DemoGpuModel("NVIDIA L40S", 46068, 350.0, 36.0)
RTX4090 = DemoGpuModel("NVIDIA GeForce RTX 4090", 24564, 450.0, 21.0)
RTX2080S = DemoGpuModel("NVIDIA GeForce RTX 2080 SUPER", 8192, 250.0, 9.0)

USERS = (
    "a.very-long-username",
    "mchen",
    "priya.raman",
    "jdoe",
    "s.okonkwo-fitzgerald",
    "lwang",
)
PROGRAMS = ("python train.py", "python -m torch.distributed.run", "./gpu_burn", "jupyter-kernel")


@dataclass(frozen=True, slots=True)
class DemoHost:
    name: str
    model: DemoGpuModel
    gpus: int
    busy_day: float  # chance a slot is taken in working hours
    busy_night: float
    flaky: bool = False
    mig_gpu: int | None = None  # this GPU is split into MIG instances
    cpus: int = 64
    mem_gib: int = 512
    # (path, size GiB, how full it is, 0..1): "/" first, as the poll script reads it.
    disks: tuple[tuple[str, int, float], ...] = (("/", 900, 0.4), ("/home", 8000, 0.6))


HOSTS = (
    DemoHost("demo-a100", A100, 4, 0.85, 0.45, cpus=128, mem_gib=1024),
    DemoHost(
        "demo-h100",
        H100,
        8,
        0.9,
        0.55,
        mig_gpu=7,
        cpus=224,
        mem_gib=2048,
        disks=(("/", 1800, 0.35), ("/home", 8000, 0.6), ("/scratch", 30000, 0.7)),
    ),
    DemoHost("demo-l40s", L40S, 2, 0.6, 0.2, cpus=48, mem_gib=384),
    # A full /home: what the host health marks are for.
    DemoHost(
        "demo-rtx4090",
        RTX4090,
        4,
        0.7,
        0.3,
        cpus=32,
        mem_gib=256,
        disks=(("/", 450, 0.5), ("/home", 4000, 0.93)),
    ),
    DemoHost("demo-flaky", RTX2080S, 2, 0.5, 0.2, flaky=True, cpus=16, mem_gib=64),
)

# The H100's MIG GPU: (profile, memory MiB, GPU instance id).
MIG_LAYOUT = (
    ("3g.40gb", 40448, 2),
    ("2g.20gb", 20096, 3),
    ("1g.10gb", 9984, 9),
    ("1g.10gb", 9984, 10),
)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass(frozen=True, slots=True)
class _Job:
    start: float
    end: float
    busy: bool
    user: str
    program: str
    pid: int
    memory_mib: int


@lru_cache(maxsize=4096)
def _day_jobs(
    seed: int, host: str, unit: str, day: int, busy_day: float, busy_night: float, memory_mib: int
) -> tuple[_Job, ...]:
    """Back-to-back intervals covering one UTC day (with a little spill into the next)."""
    rng = _rng(seed, host, unit, day)
    t = day * DAY_S
    end = t + DAY_S
    jobs = []
    while t < end:
        hour = (t % DAY_S) / 3600
        weekday = datetime.fromtimestamp(t, UTC).weekday()
        working = 8 <= hour < 20 and weekday < 5
        p_busy = busy_day if working else busy_night
        busy = rng.random() < p_busy
        length = rng.uniform(20, 180) * 60 if busy else rng.uniform(10, 90) * 60
        jobs.append(
            _Job(
                start=t,
                end=t + length,
                busy=busy,
                user=rng.choice(USERS),
                program=rng.choice(PROGRAMS),
                pid=rng.randint(1000, 99999),
                memory_mib=int(memory_mib * rng.uniform(0.25, 0.95)),
            )
        )
        t += length
    return tuple(jobs)


class DemoCluster:
    def __init__(self, seed: int = 7, hosts: tuple[DemoHost, ...] = HOSTS) -> None:
        self.seed = seed
        self.hosts = hosts

    def host_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    def _job(self, host: DemoHost, unit: str, ts: float, memory_mib: int) -> _Job:
        day = int(ts // DAY_S)
        # A job that began yesterday can still be running: look one day back first.
        for d in (day - 1, day):
            for job in _day_jobs(
                self.seed, host.name, unit, d, host.busy_day, host.busy_night, memory_mib
            ):
                if job.start <= ts < job.end:
                    return job
        return _day_jobs(
            self.seed, host.name, unit, day, host.busy_day, host.busy_night, memory_mib
        )[-1]

    def _is_down(self, host: DemoHost, ts: float) -> bool:
        # Down for about 12 minutes every 3 hours, at a host-specific offset.
        return host.flaky and (ts + 1800) % (3 * 3600) < 12 * 60

    def snapshot(self, name: str, when: datetime) -> HostSnapshot:
        host = next(h for h in self.hosts if h.name == name)
        ts = when.timestamp()
        if self._is_down(host, ts):
            return HostSnapshot(
                name,
                HostState.TIMEOUT,
                f"No answer from {name} within 10 s",
                polled_at=when,
                source="demo",
            )
        gpus = tuple(self._gpu(host, i, ts) for i in range(host.gpus))
        jitter = _rng(self.seed, name, int(ts)).uniform(6, 14)
        health = self._health(host, ts, gpus)
        return HostSnapshot(
            name,
            HostState.OK,
            None,
            polled_at=when,
            latency_ms=round(jitter, 1),
            gpus=gpus,
            source="demo",
            data_at=when,
            health=health,
        )

    def _health(self, host: DemoHost, ts: float, gpus: tuple[GpuSample, ...]) -> HostHealth:
        """Load follows the GPU jobs (a few data-loader threads each), RAM too; disks
        fill slowly through the day and wobble a little."""
        busy = sum(1 for g in gpus if g.processes or any(m.processes for m in g.mig_devices))
        rng = _rng(self.seed, host.name, "health", int(ts // 60))
        load = busy * rng.uniform(3.0, 8.0) + rng.uniform(0.1, 1.5)
        mem_total = host.mem_gib * 1024
        mem_used = int(
            mem_total * min(0.97, 0.05 + busy / max(1, host.gpus) * rng.uniform(0.4, 0.7))
        )
        day_part = (ts % DAY_S) / DAY_S
        disks = []
        for path, size_gib, full in host.disks:
            total = size_gib * 1024
            used = int(total * min(0.99, full + 0.01 * day_part + rng.uniform(-0.003, 0.003)))
            reserved = total // 20 if path == "/" else 0  # ext4 keeps 5% for root
            disks.append(DiskUsage(path, total, used, max(0, total - reserved - used)))
        return HostHealth(
            load1=round(load, 2),
            load5=round(load * 0.95, 2),
            load15=round(load * 0.9, 2),
            cpus=host.cpus,
            mem_total_mib=mem_total,
            mem_used_mib=mem_used,
            disks=tuple(disks),
        )

    def snapshots_at(self, when: datetime) -> list[HostSnapshot]:
        return [self.snapshot(h.name, when) for h in self.hosts]

    def _gpu(self, host: DemoHost, index: int, ts: float) -> GpuSample:
        model = host.model
        uuid = f"GPU-{hashlib.md5(f'{host.name}/{index}'.encode()).hexdigest()[:8]}-demo"
        wobble = _rng(self.seed, host.name, index, int(ts // 10))
        if host.mig_gpu == index:
            return self._mig_gpu(host, index, ts, uuid, wobble)
        job = self._job(host, str(index), ts, model.memory_mib)
        if job.busy:
            util = wobble.randint(55, 100)
            used = job.memory_mib
            procs = (GpuProcess(job.pid, job.program, used - 400, job.user),)
            temp = 55 + util // 4 + wobble.randint(0, 4)
            power = model.idle_w + (model.tdp_w - model.idle_w) * util / 100
        else:
            util = wobble.randint(0, 2)
            used = wobble.randint(1, 5)
            procs = ()
            temp = 30 + wobble.randint(0, 6)
            power = model.idle_w + wobble.uniform(0, 4)
        return GpuSample(
            index=index,
            uuid=uuid,
            name=model.name,
            memory_total_mib=model.memory_mib,
            memory_used_mib=used,
            utilization_pct=util,
            temperature_c=temp,
            power_w=round(power, 2),
            pci_bus_id=f"00000000:{0x17 + index * 0x10:02X}:00.0",
            processes=procs,
        )

    def _mig_gpu(
        self, host: DemoHost, index: int, ts: float, uuid: str, wobble: random.Random
    ) -> GpuSample:
        from gpu_tray.core.na import NA

        migs = []
        total_used = 0
        for mi, (profile, mem, gi) in enumerate(MIG_LAYOUT):
            job = self._job(host, f"{index}/mig{mi}", ts, mem)
            used = job.memory_mib if job.busy else wobble.randint(9, 26)
            procs = (
                (GpuProcess(job.pid, job.program, used - 200, job.user, gi, 0),) if job.busy else ()
            )
            total_used += used
            migs.append(
                MigDevice(
                    index=mi,
                    uuid=f"MIG-{uuid[4:12]}-{mi}",
                    profile=profile,
                    gpu_instance_id=gi,
                    compute_instance_id=0,
                    memory_total_mib=mem,
                    memory_used_mib=used,
                    processes=procs,
                )
            )
        busy = sum(1 for m in migs if m.processes)
        return GpuSample(
            index=index,
            uuid=uuid,
            name=host.model.name,
            memory_total_mib=host.model.memory_mib,
            memory_used_mib=total_used,
            utilization_pct=NA,
            temperature_c=34 + busy * 7,
            power_w=round(host.model.idle_w + busy * 90.0, 2),
            pci_bus_id=f"00000000:{0x17 + index * 0x10:02X}:00.0",
            mig_enabled=True,
            mig_devices=tuple(migs),
        )


class DemoProbe:
    """One simulated host behind the same interface as an SSH host."""

    kind = "demo"

    def __init__(self, cluster: DemoCluster, host: str, clock=lambda: datetime.now(UTC)) -> None:
        self.cluster = cluster
        self.name = host
        self._clock = clock

    def expected_hosts(self) -> tuple[str, ...]:
        return (self.name,)

    def poll(self) -> list[HostSnapshot]:
        return [self.cluster.snapshot(self.name, self._clock())]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def demo_probes(seed: int = 7) -> list[DemoProbe]:
    cluster = DemoCluster(seed)
    return [DemoProbe(cluster, name) for name in cluster.host_names()]


def backfill_times(now: datetime, days: int = 7, step_s: int = 60) -> list[datetime]:
    start = now - timedelta(days=days)
    return [start + timedelta(seconds=i * step_s) for i in range(int(days * DAY_S / step_s))]
