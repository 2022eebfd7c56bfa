"""The words of the tray: tooltip and menu lines. Plain functions, no Qt, easy to test."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gpu_tray.core.availability import ClusterSummary, ThresholdsFor, host_units
from gpu_tray.core.idle import duration_text
from gpu_tray.core.models import GpuSample, HostHealth, HostSnapshot, HostState, utcnow
from gpu_tray.core.na import NA
from gpu_tray.core.people import Person
from gpu_tray.core.prediction import expected_groups, expected_text
from gpu_tray.core.rules import short_model
from gpu_tray.core.settings import FreeThresholds

#: The tooltip lists this many hosts, then "and N more".
TOOLTIP_HOSTS = 20
#: Menu lines longer than this are cut with "…" (the tooltip and submenu have the rest).
MENU_LINE = 72


def elide(text: str, limit: int = MENU_LINE) -> str:
    """One line of at most `limit` characters; leading indentation is kept."""
    indent = text[: len(text) - len(text.lstrip(" "))]
    text = indent + " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, int(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def summary_line(summary: ClusterSummary) -> str:
    hosts = f"{summary.hosts_total} host{'s' if summary.hosts_total != 1 else ''}"
    if summary.hosts_total == 0:
        return "No hosts"
    if summary.total == 0:
        return f"No data from {hosts} yet" if not summary.hosts_failing else f"No data from {hosts}"

    text = f"{summary.free} of {summary.total} GPUs free on {hosts}"
    if summary.hosts_failing:
        text += f", {summary.hosts_failing} failing"
    if summary.gpus_faulty:
        text += f", {summary.gpus_faulty} GPU{'s' if summary.gpus_faulty != 1 else ''} faulty"
    return text


def host_counts(snap: HostSnapshot, thresholds_for: ThresholdsFor) -> tuple[int, int]:
    units = host_units(snap, thresholds_for(snap.name))
    return sum(1 for u in units if u.free), len(units)


def host_status(snap: HostSnapshot, thresholds_for: ThresholdsFor, now: datetime) -> str:
    """ "0/4 free" | "timeout, data 4 min old" | "connecting" """
    free, total = host_counts(snap, thresholds_for)
    if snap.state is HostState.OK:
        faulty = sum(1 for g in snap.gpus if g.fault)
        return f"{free}/{total} free" + (f", {faulty} faulty" if faulty else "")
    text = snap.state.value.replace("_", " ")
    if snap.stale and (age := snap.age_s(now)) is not None:
        text += f", data {age_text(age)} old"
    return text


def tooltip(
    snaps: Sequence[HostSnapshot],
    summary: ClusterSummary,
    thresholds_for: ThresholdsFor,
    now: datetime | None = None,
    title: str = "gpu-tray",
    extra: Sequence[str] = (),
) -> str:
    """One line for the cluster, then one per host: name, free/total, state, age when stale."""
    now = now or utcnow()
    lines = [f"{title}: {summary_line(summary)}"]
    for snap in snaps[:TOOLTIP_HOSTS]:
        line = f"{snap.name}: {host_status(snap, thresholds_for, now)}"
        if mark := health_mark(snap.health):
            line += f" · {mark}"
        lines.append(line)
    if len(snaps) > TOOLTIP_HOSTS:
        lines.append(f"and {len(snaps) - TOOLTIP_HOSTS} more hosts")
    if summary.paused:
        lines.append("Polling is paused")
    lines.extend(extra)
    return "\n".join(lines)


def _gib(mib: object) -> str:
    return "?" if mib is NA else f"{float(mib) / 1024:.1f}"  # type: ignore[arg-type]


def memory_text(used: object, total: object) -> str:
    return f"{_gib(used)}/{_gib(total)} GiB"


SOURCE_NAMES = {
    "ssh": "SSH",
    "demo": "the demo cluster",
    "prometheus": "Prometheus (DCGM exporter)",
    "slurm": "Slurm",
    "ssh+slurm": "SSH, allocations from Slurm",
    "prometheus+slurm": "Prometheus, allocations from Slurm",
    "scripted": "a scripted cluster",
}


def source_line(snap: HostSnapshot) -> str:
    """Where a host's data comes from: "From SSH" | "From Slurm (node mixed)"."""
    text = f"From {SOURCE_NAMES.get(snap.source, snap.source)}"
    if snap.node_state:
        text += f" (node {snap.node_state})"
    return text


def gpu_line(
    gpu: GpuSample,
    free_units: int,
    units: int,
    note: str | None = None,
    idle_for: float | None = None,
) -> str:
    """ "GPU 2 · A100 80GB · 40.9/80.0 GiB · 95% · jdoe" or "... · free";
    held idle for `idle_for` seconds: "... · 0% · idle 2 h 10 min · alice" """
    parts = [f"GPU {gpu.index}", short_model(gpu.name)]
    if note:
        parts.append(note)

    parts.append(memory_text(gpu.memory_used_mib, gpu.memory_total_mib))
    if gpu.utilization_pct is not NA:
        parts.append(f"{gpu.utilization_pct}%")
    if gpu.mig_enabled and gpu.mig_devices:
        parts.append(f"MIG {free_units}/{units} free")
    if gpu.fault:
        # Said first and instead of "busy": it needs a person, not patience.
        parts.append(f"FAULT: {gpu.fault}")
    users = gpu.users
    if idle_for is not None:
        parts.append(f"idle {duration_text(idle_for)}")
    if users:
        parts.append(", ".join(users))
    elif free_units and not (gpu.mig_enabled and gpu.mig_devices):
        parts.append("free")
    elif gpu.processes:
        parts.append(f"{len(gpu.processes)} process{'es' if len(gpu.processes) > 1 else ''}")
    elif not free_units and not gpu.mig_devices and not gpu.fault:
        parts.append("busy")
    return " · ".join(parts)


def when_free_text(
    snap: HostSnapshot, limits: FreeThresholds, usually_free_by: datetime | None = None
) -> str | None:
    """When a host's busy GPUs are expected to free: "4 GPUs at ~14:35" from a scheduler's
    job end times, else "usually free by 02:00" from history (only with no free GPU)."""
    if not snap.ok:
        return None
    groups = expected_groups(snap, limits)
    if groups:
        return expected_text(groups)
    free = sum(1 for u in host_units(snap, limits) if u.free)
    if usually_free_by is not None and not free:
        return f"usually free by {usually_free_by.astimezone().strftime('%H:%M')}"
    return None


def person_line(person: Person, now: float) -> str:
    """ "alice.longname · 3 GPUs, 1 idle 2 h 10 min · 24 h: 12.5 GPU-h · 7 d: 40.1" """
    parts = [person.user]
    held = f"{person.gpus_now} GPU{'s' if person.gpus_now != 1 else ''}"
    if person.idle_now and person.idle_since is not None:
        held += f", {person.idle_now} idle {duration_text(now - person.idle_since)}"
    parts.append(held)
    parts.append(f"24 h: {person.hours_day:.1f} GPU-h")
    parts.append(f"7 d: {person.hours_week:.1f}")
    return " · ".join(parts)


def mig_line(gpu: GpuSample, mig_index: int) -> str:
    mig = next(m for m in gpu.mig_devices if m.index == mig_index)
    users = ", ".join(dict.fromkeys(p.user for p in mig.processes if p.user))
    state = users or ("busy" if mig.processes else "free")
    return (
        f"MIG {mig.index} · {mig.profile} · "
        f"{memory_text(mig.memory_used_mib, mig.memory_total_mib)} · {state}"
    )


# --- host health ------------------------------------------------------------------------

#: Starts the words that say why a host needs a look (RAM or a disk over 90 %).
WARN = "⚠"


def size_text(mib: int) -> str:
    """ "256 GiB" | "3.9 TiB" | "512 MiB" """
    if mib >= 1024 * 1024:
        return f"{mib / 1024 / 1024:.1f} TiB"
    if mib >= 1024:
        return f"{mib / 1024:.0f} GiB"
    return f"{mib} MiB"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}%"


def health_mark(health: HostHealth | None) -> str | None:
    """ "⚠ RAM 95% full, /home 97% full", or None when nothing is over the limit."""
    warnings = health.warnings() if health is not None else ()
    return f"{WARN} {', '.join(warnings)}" if warnings else None


def load_line(health: HostHealth) -> str:
    """ "Load 11.5 on 32 CPUs · RAM 32% of 256 GiB" """
    load = "?" if health.load1 is None else f"{health.load1:.1f}"
    parts = [f"Load {load}" + ("" if health.cpus is None else f" on {health.cpus} CPUs")]
    ram = f"RAM {_pct(health.mem_pct)}"
    if health.mem_total_mib:
        ram += f" of {size_text(health.mem_total_mib)}"
    parts.append(ram)
    return " · ".join(parts)


def disks_line(health: HostHealth) -> str | None:
    """ "Disk / 53% of 450 GiB · /home 93% of 3.9 TiB"; None when no disk was read."""
    if not health.disks:
        return None
    parts = []
    for d in health.disks:
        text = f"{d.path} {_pct(d.used_pct)}"
        if d.total_mib:
            text += f" of {size_text(d.total_mib)}"
        parts.append(text)
    return "Disk " + " · ".join(parts)
