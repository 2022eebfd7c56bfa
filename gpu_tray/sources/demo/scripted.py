"""A cluster replayed from a file: `gpu-tray status --json` output, read again on every poll.

For tests and demonstrations of the tray, where a GPU must become free at a
moment of the test's choosing: `GPU_TRAY_DEMO_SCRIPT=cluster.json gpu-tray --demo`.
Whoever drives it rewrites the file (atomically: write elsewhere, then rename);
the next poll sees the change. Only the keys the tray uses are read: per host
`name`, `state`, `error`, `gpus`, `health`; per GPU the keys of the status document.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpu_tray.core.models import (
    DiskUsage,
    GpuProcess,
    GpuSample,
    HostHealth,
    HostSnapshot,
    HostState,
    MigDevice,
    utcnow,
)
from gpu_tray.core.na import NA

ENV_DEMO_SCRIPT = "GPU_TRAY_DEMO_SCRIPT"


def _na(value: Any) -> Any:
    return NA if value is None else value


def _time(value: Any) -> datetime | None:
    """An ISO 8601 UTC time as `status --json` writes it ("2026-11-23T14:35:00Z")."""
    if not isinstance(value, str):
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _proc(p: dict[str, Any]) -> GpuProcess:
    return GpuProcess(
        pid=p.get("pid"),
        name=str(p.get("name", "")),
        used_memory_mib=_na(p.get("used_memory_mib")),
        user=p.get("user"),
    )


def _gpu(g: dict[str, Any]) -> GpuSample:
    migs = tuple(
        MigDevice(
            index=int(m["index"]),
            uuid=str(m.get("uuid", "")),
            profile=str(m.get("profile", "")),
            memory_total_mib=_na(m.get("memory_total_mib")),
            memory_used_mib=_na(m.get("memory_used_mib")),
            processes=tuple(_proc(p) for p in m.get("processes", ())),
        )
        for m in g.get("mig_devices", ())
    )
    return GpuSample(
        index=int(g["index"]),
        uuid=str(g.get("uuid", f"GPU-scripted-{g['index']}")),
        name=str(g.get("name", "")),
        memory_total_mib=_na(g.get("memory_total_mib")),
        memory_used_mib=_na(g.get("memory_used_mib")),
        utilization_pct=_na(g.get("utilization_pct")),
        temperature_c=_na(g.get("temperature_c")),
        power_w=_na(g.get("power_w")),
        mig_enabled=bool(migs),
        mig_devices=migs,
        processes=tuple(_proc(p) for p in g.get("processes", ())),
        expected_free_at=_time(g.get("expected_free_at")),
    )


def _health(h: dict[str, Any] | None) -> HostHealth | None:
    """The `health` object of the status document (null: unknown)."""
    if h is None:
        return None
    if not isinstance(h, dict):
        raise TypeError(f"health must be an object or null, not {type(h).__name__}")
    return HostHealth(
        load1=h.get("load1"),
        load5=h.get("load5"),
        load15=h.get("load15"),
        cpus=h.get("cpus"),
        mem_total_mib=h.get("mem_total_mib"),
        mem_used_mib=h.get("mem_used_mib"),
        disks=tuple(
            DiskUsage(
                str(d["path"]),
                d.get("total_mib"),
                d.get("used_mib"),
                d.get("avail_mib"),
            )
            for d in h.get("disks", ())
        ),
    )


class ScriptedCluster:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._hosts: dict[str, dict[str, Any]] = {}
        self._error: str | None = None

    def _load(self) -> None:
        """Re-read the file when it changed. Called from several worker threads."""
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp == self._stamp:
                    return
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                self._hosts = {str(h["name"]): h for h in doc["hosts"]}
                self._error, self._stamp = None, stamp
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._error, self._stamp = f"{self.path}: {type(exc).__name__}: {exc}", None

    def host_names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._hosts)

    def snapshot(self, name: str) -> HostSnapshot:
        self._load()
        now = utcnow()
        if self._error:
            return HostSnapshot(name, HostState.BAD_OUTPUT, self._error, polled_at=now)
        h = self._hosts.get(name)
        if h is None:
            return HostSnapshot(
                name, HostState.UNREACHABLE, f"{name} is not in {self.path}", polled_at=now
            )
        try:
            state = HostState(h.get("state", "ok"))
            gpus = tuple(_gpu(g) for g in h.get("gpus", ())) if state is HostState.OK else ()
            health = _health(h.get("health"))
        except (ValueError, KeyError, TypeError) as exc:
            return HostSnapshot(
                name, HostState.BAD_OUTPUT, f"{self.path}: {name}: {exc}", polled_at=now
            )
        return HostSnapshot(
            name,
            state,
            h.get("error"),
            polled_at=now,
            latency_ms=h.get("latency_ms"),
            gpus=gpus,
            health=health,
            source="scripted",
            data_at=now if state is HostState.OK else None,
        )


class ScriptedProbe:
    kind = "scripted"

    def __init__(self, cluster: ScriptedCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name

    def expected_hosts(self) -> tuple[str, ...]:
        return (self.name,)

    def poll(self) -> list[HostSnapshot]:
        return [self.cluster.snapshot(self.name)]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def scripted_probes(path: Path) -> list[ScriptedProbe]:
    cluster = ScriptedCluster(path)
    return [ScriptedProbe(cluster, name) for name in cluster.host_names()]
