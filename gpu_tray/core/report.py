"""`gpu-tray status`: the JSON document (public interface) and the terminal table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gpu_tray.core.availability import host_units, summarize
from gpu_tray.core.idle import UnitKey, duration_text, iso_utc
from gpu_tray.core.join import gpu_note
from gpu_tray.core.models import GpuSample, HostHealth, HostSnapshot, utcnow
from gpu_tray.core.na import NA, or_none
from gpu_tray.core.settings import Config

#: Unit -> `idle_since` (epoch seconds) of the units held idle (core/idle.py).
IdleMap = Mapping[UnitKey, float]


def _gpu_json(
    gpu: GpuSample,
    free: bool,
    note: str | None = None,
    host: str = "",
    idle: IdleMap | None = None,
) -> dict[str, Any]:
    idle = idle or {}
    return {
        "index": gpu.index,
        "uuid": gpu.uuid,
        "name": gpu.name,
        "memory_total_mib": or_none(gpu.memory_total_mib),
        "memory_used_mib": or_none(gpu.memory_used_mib),
        "utilization_pct": or_none(gpu.utilization_pct),
        "temperature_c": or_none(gpu.temperature_c),
        "power_w": or_none(gpu.power_w),
        "free": free,
        # What makes the GPU unusable, as the source said it: nvidia-smi's reading
        # ("GPU requires reset", "GPU is lost", "Unknown Error"), a drained node, a
        # stale series. null when healthy.
        "fault": gpu.fault,
        # Scheduler sources (Slurm): handed to a job or not; null elsewhere.
        "allocated": gpu.allocated,
        # Where Slurm and a measurement disagree: "allocated but idle", "busy outside Slurm".
        "note": note,
        # Held idle since (ISO 8601 UTC), from the history and this poll; null when not.
        "idle_since": iso_utc(idle.get((host, gpu.index, None))),
        # Scheduler sources (Slurm): when the jobs holding it end (ISO 8601 UTC) or null.
        "expected_free_at": _utc(gpu.expected_free_at),
        "mig_devices": [
            {
                "index": m.index,
                "uuid": m.uuid,
                "profile": m.profile,
                "memory_total_mib": or_none(m.memory_total_mib),
                "memory_used_mib": or_none(m.memory_used_mib),
                "idle_since": iso_utc(idle.get((host, gpu.index, m.index))),
                "processes": [_proc_json(p) for p in m.processes],
            }
            for m in gpu.mig_devices
        ],
        "processes": [_proc_json(p) for p in gpu.processes],
    }


def _proc_json(p: Any) -> dict[str, Any]:
    return {
        "pid": p.pid,
        "user": p.user,
        "name": p.name,
        "used_memory_mib": or_none(p.used_memory_mib),
    }


def health_json(health: HostHealth | None) -> dict[str, Any] | None:
    """Public: `load1`, `cpus`, `mem_total_mib`, `mem_used_mib`, `disks` [{`path`,
    `total_mib`, `used_mib`}]; the rest (load5, load15, avail_mib) are extra keys."""
    if health is None:
        return None
    return {
        "load1": health.load1,
        "load5": health.load5,
        "load15": health.load15,
        "cpus": health.cpus,
        "mem_total_mib": health.mem_total_mib,
        "mem_used_mib": health.mem_used_mib,
        "disks": [
            {
                "path": d.path,
                "total_mib": d.total_mib,
                "used_mib": d.used_mib,
                "avail_mib": d.avail_mib,
            }
            for d in health.disks
        ],
    }


def _gpu_is_free(snap: HostSnapshot, gpu: GpuSample, config: Config) -> bool:
    """A MIG GPU counts as free when at least one of its units is."""
    units = [
        u for u in host_units(snap, config.thresholds_for(snap.name)) if u.gpu_index == gpu.index
    ]
    return any(u.free for u in units)


def status_document(
    snaps: Sequence[HostSnapshot],
    config: Config,
    idle: IdleMap | None = None,
    usually_free_by: Mapping[str, datetime] | None = None,
) -> dict[str, Any]:
    """The `status --json` document. `idle`: units held idle (core/idle.py);
    `usually_free_by`: host -> when history says a GPU is usually free (core/prediction.py)."""
    summary = summarize(snaps, config.thresholds_for)
    usual = usually_free_by or {}
    return {
        "generated_at": _utc(utcnow()),
        "free_gpus": summary.free,
        "total_gpus": summary.total,
        "hosts": [
            {
                "name": s.name,
                "state": s.state.value,
                "error": s.message,
                "polled_at": _utc(s.polled_at),
                "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 1),
                "source": s.source,
                "node_state": s.node_state,
                # From history alone: null unless it supports a prediction (see README).
                "usually_free_by": _utc(usual.get(s.name)),
                "health": health_json(s.health),
                "gpus": [
                    _gpu_json(
                        g,
                        _gpu_is_free(s, g, config),
                        gpu_note(g, config.thresholds_for(s.name)),
                        s.name,
                        idle,
                    )
                    for g in s.gpus
                ],
            }
            for s in snaps
        ],
    }


def _utc(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mib(used: object, total: object) -> str:
    return f"{_gib(used)}/{_gib(total)} GiB"


def _gib(v: object) -> str:
    return "N/A" if v is NA else f"{v / 1024:.1f}"  # type: ignore[operator]


def when_text(
    host: str,
    gpu: GpuSample,
    mig: int | None,
    idle: IdleMap,
    now: datetime,
) -> str:
    """The table's WHEN cell: "idle 2 h 10 min" and/or "frees ~14:35" (local time)."""
    parts = []
    since = idle.get((host, gpu.index, mig))
    if since is not None:
        parts.append(f"idle {duration_text(now.timestamp() - since)}")
    if gpu.expected_free_at is not None and mig is None:
        parts.append(f"frees ~{gpu.expected_free_at.astimezone().strftime('%H:%M')}")
    return ", ".join(parts)


def status_table(
    snaps: Sequence[HostSnapshot],
    config: Config,
    idle: IdleMap | None = None,
    usually_free_by: Mapping[str, datetime] | None = None,
) -> str:
    """The terminal table. A WHEN column appears only when some GPU is held idle or has an
    expected free time; a line per host says when history says it is usually free."""
    idle = idle or {}
    header = ("HOST", "GPU", "MODEL", "MEMORY", "UTIL", "TEMP", "USERS", "STATE")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    when: list[str] = []
    for s in snaps:
        units = host_units(s, config.thresholds_for(s.name))
        if not s.ok:
            notes.append(f"{s.name}: {s.state.value}: {s.message}")
        notes.extend(f"{s.name} GPU {g.index}: {g.fault}" for g in s.gpus if g.fault)
        if not s.gpus:
            rows.append((s.name, "-", "-", "-", "-", "-", "-", s.state.value.upper()))
            when.append("")
            continue
        for gpu in s.gpus:
            mine = [u for u in units if u.gpu_index == gpu.index]
            if gpu.mig_enabled and gpu.mig_devices:
                for mig, unit in zip(gpu.mig_devices, mine, strict=False):
                    users = ",".join(dict.fromkeys(p.user for p in mig.processes if p.user))
                    rows.append(
                        (
                            s.name,
                            f"{gpu.index}/{mig.index}",
                            f"{gpu.name} MIG {mig.profile}",
                            _mib(mig.memory_used_mib, mig.memory_total_mib),
                            "N/A",
                            f"{gpu.temperature_c}C",
                            users or "-",
                            _verdict(s, unit.free, gpu),
                        )
                    )
                    when.append(when_text(s.name, gpu, mig.index, idle, s.polled_at))
                continue
            util = gpu.utilization_pct
            rows.append(
                (
                    s.name,
                    str(gpu.index),
                    gpu.name,
                    _mib(gpu.memory_used_mib, gpu.memory_total_mib),
                    "N/A" if util is NA else f"{util}%",
                    "N/A" if gpu.temperature_c is NA else f"{gpu.temperature_c}C",
                    ",".join(gpu.users) or ("?" if gpu.processes else "-"),
                    _verdict(s, bool(mine and mine[0].free), gpu),
                )
            )
            when.append(when_text(s.name, gpu, None, idle, s.polled_at))
    if any(when):
        header = (*header, "WHEN")
        rows = [(*r, w) for r, w in zip(rows, when, strict=True)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    # Health under the GPUs, above the summary (scripts read the summary from its place).
    health = [(s.name, health_text(s.health)) for s in snaps if s.health is not None]
    if health:
        lines.append("")
        width = max(len("HOST"), *(len(name) for name, _ in health))
        lines.append(f"{'HOST'.ljust(width)}  HEALTH")
        lines.extend(f"{name.ljust(width)}  {text}" for name, text in health)
    summary = summarize(snaps, config.thresholds_for)
    lines.append("")
    lines.append(f"{summary.free} of {summary.total} GPUs free on {len(snaps)} hosts")
    for host, at in (usually_free_by or {}).items():
        lines.append(f"{host}: usually a GPU free by {at.astimezone().strftime('%a %H:%M')}")
    lines.extend(notes)
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}%"


def health_text(health: HostHealth) -> str:
    """ "load 3.2/64 · RAM 61% of 503 GiB · / 42% · /home 93% · WARN: /home 93% full" """
    cpus = "?" if health.cpus is None else str(health.cpus)
    parts = [f"load {'?' if health.load1 is None else f'{health.load1:.1f}'}/{cpus}"]
    ram = f"RAM {_pct(health.mem_pct)}"
    if health.mem_total_mib is not None:
        ram += f" of {health.mem_total_mib / 1024:.0f} GiB"
    parts.append(ram)
    parts.extend(f"{d.path} {_pct(d.used_pct)}" for d in health.disks)
    warnings = health.warnings()
    if warnings:
        parts.append("WARN: " + ", ".join(warnings))
    return " · ".join(parts)


def _verdict(s: HostSnapshot, free: bool, gpu: GpuSample | None = None) -> str:
    if not s.ok:
        return "STALE" if s.stale else s.state.value.upper()
    if free:
        return "FREE"
    if gpu is not None and gpu.fault:
        return "FAULT"  # a GPU that needs a reset, a lost one, a drained node: see the notes
    if gpu is not None and gpu.allocated and not gpu.processes:
        return "ALLOCATED"  # a scheduler gave it to a job that shows no process here
    return "BUSY"
