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
DEFAULT_DOWN_AFTER_S = 60.0
#: Where a rule's firing goes when `channels` is not given: the desktop only.
DESKTOP = "desktop"
DEFAULT_CHANNELS: tuple[str, ...] = (DESKTOP,)
#: `[[watch]] event = ...`: "free" (the default: tell me when GPUs are free),
#: "host_down" (a host failing for `down_after_s`, and its recovery) or "idle_holder"
#: (a GPU in scope became held idle; for lab admins).
WatchEvent = Literal["free", "host_down", "idle_holder"]


@dataclass(frozen=True, slots=True)
class FreeThresholds:
    """When is a GPU free: see DESIGN.md, "When is a GPU free"."""

    max_memory_mib: int = DEFAULT_MAX_MEMORY_MIB
    max_utilization_pct: int = DEFAULT_MAX_UTILIZATION_PCT


@dataclass(frozen=True, slots=True)
class IdleSettings:
    """`[idle]` in config.toml: when a held GPU counts as idle (see core/idle.py)."""

    max_utilization_pct: int = 5
    after_min: float = 30.0
    #: Remind me about my own idle GPUs after this many minutes; None: off (default).
    remind_after_min: float | None = None

    @property
    def after_s(self) -> float:
        return self.after_min * 60.0


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
    # Absolute path of nvidia-smi on the host, when neither the non-interactive PATH
    # nor the usual folders have it. Sent to the poll script on stdin, never in a command.
    nvidia_smi: str | None = None
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
    """A watch rule as written in config.toml. The state machine is in `rules.py`
    (free GPUs) and `host_events.py` (`event = "host_down"`)."""

    host: str | None = None
    gpu: int | None = None
    count: int = 1
    model: str | None = None
    min_free_memory_mib: int | None = None
    #: Where a firing goes: "desktop" and/or [[channels]] names.
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    event: WatchEvent = "free"
    down_after_s: float = DEFAULT_DOWN_AFTER_S

    @property
    def to_desktop(self) -> bool:
        return DESKTOP in self.channels

    @property
    def named_channels(self) -> tuple[str, ...]:
        """The [[channels]] this rule sends to (everything but "desktop")."""
        return tuple(c for c in self.channels if c != DESKTOP)

    @property
    def scope(self) -> Literal["gpu", "host", "cluster"]:
        if self.host is not None and self.gpu is not None:
            return "gpu"
        if self.host is not None:
            return "host"
        return "cluster"

    @property
    def key(self) -> str:
        """Stable identity, used for snooze and menu toggles. Rules written before
        channels and events existed keep the key they had."""
        if self.event == "host_down":
            key = f"event={self.event};host={self.host or '*'};after={self.down_after_s:g}"
        else:
            key = (
                f"host={self.host or '*'};gpu={'*' if self.gpu is None else self.gpu};"
                f"count={self.count};model={self.model or '*'};"
                f"mem={self.min_free_memory_mib or 0}"
                + ("" if self.event == "free" else f";event={self.event}")
            )
        if self.channels != DEFAULT_CHANNELS:
            key += f";channels={','.join(self.channels)}"
        return key


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """`[[channels]] name = "..."`: the Apprise URL is a secret and lives in the keyring
    (account `channel:NAME`), never here."""

    name: str


@dataclass(frozen=True, slots=True)
class Config:
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    free: FreeThresholds = field(default_factory=FreeThresholds)
    hosts: tuple[HostConfig, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    watch: tuple[WatchSpec, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    idle: IdleSettings = field(default_factory=IdleSettings)
    path: Path | None = None  # where it was loaded from; None for the built-in demo
    demo: bool = False

    def thresholds_for(self, host: str) -> FreeThresholds:
        for h in self.hosts:
            if h.name == host and h.free is not None:
                return h.free
        return self.free
