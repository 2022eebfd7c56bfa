"""Typed configuration. Loading and validation live in `config.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AuthMethod = Literal["agent", "key", "password"]

DEFAULT_POLL_INTERVAL_S = 10.0
DEFAULT_MAX_MEMORY_MIB = 512
DEFAULT_MAX_UTILIZATION_PCT = 10
DEFAULT_CONFIRM_POLLS = 2


@dataclass(frozen=True, slots=True)
class FreeThresholds:
    """When is a GPU free: see DESIGN.md, "When is a GPU free"."""

    max_memory_mib: int = DEFAULT_MAX_MEMORY_MIB
    max_utilization_pct: int = DEFAULT_MAX_UTILIZATION_PCT


@dataclass(frozen=True, slots=True)
class HostConfig:
    name: str
    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None
    auth: AuthMethod | None = None
    free: FreeThresholds | None = None
    # Absolute paths whose file systems are watched besides "/" (e.g. "/home", "/scratch").
    disks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    kind: Literal["prometheus", "slurm"]
    url: str | None = None  # prometheus
    login: str | None = None  # slurm: a host reached like [[hosts]]
    name: str | None = None
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    confirm_polls: int = DEFAULT_CONFIRM_POLLS
    sound: bool = False


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A watch rule as written in config.toml. The state machine is in `rules.py`."""

    host: str | None = None
    gpu: int | None = None
    count: int = 1
    model: str | None = None
    min_free_memory_mib: int | None = None

    @property
    def scope(self) -> Literal["gpu", "host", "cluster"]:
        if self.host is not None and self.gpu is not None:
            return "gpu"
        if self.host is not None:
            return "host"
        return "cluster"

    @property
    def key(self) -> str:
        """Stable identity, used for snooze and menu toggles."""
        return (
            f"host={self.host or '*'};gpu={'*' if self.gpu is None else self.gpu};"
            f"count={self.count};model={self.model or '*'};"
            f"mem={self.min_free_memory_mib or 0}"
        )


@dataclass(frozen=True, slots=True)
class Config:
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    free: FreeThresholds = field(default_factory=FreeThresholds)
    hosts: tuple[HostConfig, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    watch: tuple[WatchSpec, ...] = ()
    path: Path | None = None  # where it was loaded from; None for the built-in demo
    demo: bool = False

    def thresholds_for(self, host: str) -> FreeThresholds:
        for h in self.hosts:
            if h.name == host and h.free is not None:
                return h.free
        return self.free
