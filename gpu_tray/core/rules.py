"""Watch rules with hysteresis: when to say "it is free now", once.

A rule (a `WatchSpec` from config.toml) names a scope: one GPU on a host, a
host, or the whole cluster, and what must be free together there (`count`,
optional `model` substring, optional `min_free_memory_mib`). "Together" means
on one host, so that one `ssh` command with `CUDA_VISIBLE_DEVICES` can use them.

The state machine, per rule:

- it is *armed* at start;
- each snapshot of a relevant host is evaluated to True (enough matching units
  free), False (a good poll that says no) or unknown (failed, connecting or
  stale: old data is not a promise);
- an armed rule fires when one host has been True for `confirm_polls`
  consecutive polls of that host (an unknown poll breaks the run), unless it
  is snoozed; a snoozed rule stays armed and may fire once the snooze is over;
- after firing it re-arms only when no host holds it any more AND every host
  that held it since it fired has been seen False. A host that goes down and
  comes back with the same GPU still free is the same free period: no second
  notification. A host that never held the rule (say one dead for days) does
  not keep a cluster rule from re-arming.

Qt-free: the tray feeds it from the GUI thread, `gpu-tray wait` from a loop.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gpu_tray.core.availability import ThresholdsFor, Unit, host_units
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import HostConfig, WatchSpec

Clock = Callable[[], float]
SshArgsFor = Callable[[str], Sequence[str]]

#: How many unit lines a notification body lists before "and N more".
MAX_BODY_LINES = 6


# -- text -------------------------------------------------------------------------------------

_VENDOR = re.compile(r"^(NVIDIA|Tesla|GeForce|Quadro)\s+", re.IGNORECASE)
# Form factors and memory types say nothing a person picks a GPU by.
_NOISE = re.compile(r"^(SXM\d*|PCIE|PCIe|HBM\d*e?|NVL|SXM\d*-\d+GB)$", re.IGNORECASE)


def short_model(name: str) -> str:
    """ "NVIDIA A100-SXM4-80GB" -> "A100 80GB"; "NVIDIA GeForce RTX 4090" -> "RTX 4090"."""
    rest = name.strip()
    while True:
        trimmed = _VENDOR.sub("", rest)
        if trimmed == rest:
            break
        rest = trimmed
    words = [w for w in re.split(r"[\s-]+", rest) if w and not _NOISE.match(w)]
    return " ".join(words) or name.strip()


def gib_text(mib: object) -> str:
    """Free memory, rounded down (never promise more than there is): "79 GiB", "9.7 GiB"."""
    if mib is NA or not isinstance(mib, int | float):
        return "N/A"
    gib = max(0.0, float(mib)) / 1024
    if gib >= 10:
        return f"{math.floor(gib)} GiB"
    return f"{math.floor(gib * 10) / 10:g} GiB"


def unit_text(unit: Unit) -> str:
    """ "node3: GPU 2 (A100 80GB) is free, 79 GiB" """
    text = f"{unit.host}: {unit.label} ({short_model(unit.model)}) is free"
    if unit.memory_free_mib is not NA:
        text += f", {gib_text(unit.memory_free_mib)}"
    return text


def describe(spec: WatchSpec) -> str:
    """A rule in words, for the menu: "GPU 2 on node3", "any 2 A100 GPUs anywhere"."""
    if spec.scope == "gpu":
        text = f"GPU {spec.gpu} on {spec.host}"
        if spec.count > 1:
            text += f" ({spec.count} units)"
        extra = []
        if spec.model:
            extra.append(f"if {spec.model}")
        if spec.min_free_memory_mib is not None:
            extra.append(f"with {spec.min_free_memory_mib} MiB free")
        return " ".join([text, *extra])
    words = ["any"]
    if spec.count > 1:
        words.append(str(spec.count))
    if spec.model:
        words.append(spec.model)
    words.append("GPUs" if spec.count > 1 else "GPU")
    if spec.min_free_memory_mib is not None:
        words.append(f"with {spec.min_free_memory_mib} MiB free")
    words.append(f"on {spec.host}" if spec.host is not None else "anywhere")
    return " ".join(words)


# -- commands ---------------------------------------------------------------------------------


def ssh_args(host: HostConfig) -> list[str]:
    """What follows `ssh` to reach `host` as config.toml describes it (unquoted argv)."""
    args: list[str] = []
    if host.port is not None:
        args += ["-p", str(host.port)]
    if host.proxy_jump:
        args += ["-J", host.proxy_jump]
    if host.identity_file:
        args += ["-i", host.identity_file]
    dest = host.hostname or host.name
    if host.user:
        dest = f"{host.user}@{dest}"
    return [*args, dest]


def ssh_command(args: Sequence[str], cuda_ids: Sequence[str]) -> str:
    """The ready command a notification copies: a login shell with the GPUs selected.

    Everything is quoted: host names come from config and MIG UUIDs from the
    remote side, and this text ends up in a person's terminal.
    """
    ids = ",".join(cuda_ids)
    remote = f'export CUDA_VISIBLE_DEVICES={shlex.quote(ids)}; exec "$SHELL" -l'
    argv = list(args)
    # A destination starting with "-" would be read as an option.
    if argv and argv[-1].startswith("-"):
        argv.insert(len(argv) - 1, "--")
    return " ".join(["ssh", "-t", *(shlex.quote(a) for a in argv), shlex.quote(remote)])


# -- the state machine ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule that just became true and stayed true: one notification's worth."""

    spec: WatchSpec
    host: str
    units: list[Unit]
    command: str
    #: "free" (a watch rule), "idle_holder" (a GPU became held idle) or "idle_reminder"
    #: (your own GPU has been idle): see core/idle_rules.py.
    event: str = "free"
    #: For events other than "free": the notification's summary and body lines.
    summary: str = ""
    text: tuple[str, ...] = ()
    #: For events other than "free": the facts a channel sends (JSON-ready pairs).
    facts: tuple[tuple[str, object], ...] = ()

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def lines(self) -> list[str]:
        if self.text:
            return list(self.text)
        return [unit_text(u) for u in self.units]

    def payload(self) -> dict[str, object]:
        """What a channel (webhook, chat) gets for this firing: JSON-ready."""
        data: dict[str, object] = {"event": self.event, "host": self.host}
        data.update(self.facts)
        data["command"] = self.command
        return data


def notification_text(firings: Sequence[Firing]) -> tuple[str, str]:
    """(summary, body) for one notification that merges `firings` (same poll).

    A unit that several rules name is listed once. Idle-holder firings (`text` set)
    bring their own lines, after the free units.
    """
    told = [f for f in firings if f.event != "free"]
    firings = [f for f in firings if f.event == "free"]
    if not firings:
        lines = [line for f in told for line in f.text]
        summary = told[0].summary if len(told) == 1 else f"{len(told)} idle GPUs"
        return summary, "\n".join(lines[: MAX_BODY_LINES * 2])
    seen: dict[tuple[str, int, int | None], Unit] = {}
    for f in firings:
        for u in f.units:
            seen.setdefault((u.host, u.gpu_index, u.mig_index), u)
    units = list(seen.values())
    hosts = list(dict.fromkeys(u.host for u in units))
    n = len(units)
    what = "GPU" if n == 1 else f"{n} GPUs"
    where = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts"
    summary = f"{what} free on {where}"
    lines = [unit_text(u) for u in units[:MAX_BODY_LINES]]
    if n > MAX_BODY_LINES:
        lines.append(f"and {n - MAX_BODY_LINES} more")
    lines.extend(line for f in told for line in f.text)
    return summary, "\n".join(lines)


def unit_matches(spec: WatchSpec, unit: Unit) -> bool:
    """Whether `unit` is one this rule asks for (ignoring whether it is free, and `count`)."""
    if spec.host is not None and unit.host != spec.host:
        return False
    if spec.gpu is not None and unit.gpu_index != spec.gpu:
        return False
    if spec.model and spec.model.casefold() not in unit.model.casefold():
        return False
    if spec.min_free_memory_mib is not None:
        free = unit.memory_free_mib
        if free is NA or not isinstance(free, int | float) or free < spec.min_free_memory_mib:
            return False
    return True


def evaluate(
    spec: WatchSpec, snap: HostSnapshot, thresholds_for: ThresholdsFor
) -> tuple[bool | None, list[Unit]]:
    """(True, the units to use) | (False, []) | (None, []) when the snapshot cannot tell."""
    if snap.state is not HostState.OK or snap.stale:
        return None, []
    units = [
        u for u in host_units(snap, thresholds_for(snap.name)) if u.free and unit_matches(spec, u)
    ]
    if len(units) >= spec.count:
        return True, units[: spec.count]
    return False, []


def _relevant(spec: WatchSpec, host: str) -> bool:
    return spec.host is None or spec.host == host


@dataclass
class _RuleState:
    spec: WatchSpec
    armed: bool = True
    streak: dict[str, int] = field(default_factory=dict)
    holds: dict[str, bool | None] = field(default_factory=dict)
    # Hosts that held the rule since it last fired: each must be seen False to re-arm.
    period_hosts: set[str] = field(default_factory=set)
    snoozed_until: float = 0.0


@dataclass(frozen=True, slots=True)
class RuleStatus:
    """What the menu shows about a rule."""

    spec: WatchSpec
    armed: bool
    holding_hosts: tuple[str, ...]
    snoozed_until: float | None


class RuleEngine:
    def __init__(
        self,
        specs: Iterable[WatchSpec],
        thresholds_for: ThresholdsFor,
        confirm_polls: int,
        *,
        clock: Clock = time.time,
        ssh_args_for: SshArgsFor | None = None,
    ) -> None:
        if confirm_polls < 1:
            raise ValueError("confirm_polls must be at least 1")
        self.thresholds_for = thresholds_for
        self.confirm_polls = confirm_polls
        self._clock = clock
        self._ssh_args_for = ssh_args_for or (lambda host: [host])
        self._rules: dict[str, _RuleState] = {}
        self.set_specs(specs)

    @property
    def specs(self) -> list[WatchSpec]:
        return [r.spec for r in self._rules.values()]

    def set_specs(self, specs: Iterable[WatchSpec]) -> None:
        """Replace the rule set. Rules that stay keep their state (no second notification
        for a GPU that was already announced); new ones start armed."""
        old = self._rules
        self._rules = {}
        for spec in specs:
            if spec.event == "host_down":
                continue  # a rule about hosts: `host_events.HostEventEngine` keeps it
            self._rules.setdefault(spec.key, old.get(spec.key) or _RuleState(spec))

    def forget_host(self, host: str) -> None:
        """A host left the config: it no longer holds or blocks any rule."""
        for r in self._rules.values():
            r.streak.pop(host, None)
            r.holds.pop(host, None)
            r.period_hosts.discard(host)

    # -- snooze ---------------------------------------------------------------------------

    def snooze(self, keys: Iterable[str], seconds: float) -> None:
        until = self._clock() + seconds
        for key in keys:
            if key in self._rules:
                self._rules[key].snoozed_until = until

    def unsnooze(self, keys: Iterable[str] | None = None) -> None:
        for key in self._rules if keys is None else keys:
            if key in self._rules:
                self._rules[key].snoozed_until = 0.0

    def snoozed_until(self, key: str) -> float | None:
        r = self._rules.get(key)
        if r is None or r.snoozed_until <= self._clock():
            return None
        return r.snoozed_until

    # -- queries --------------------------------------------------------------------------

    def matches(self, unit: Unit) -> bool:
        """Whether any rule asks for this unit: free units no rule wants make the icon amber."""
        return any(
            unit_matches(r.spec, unit) for r in self._rules.values() if r.spec.event == "free"
        )

    def status(self) -> list[RuleStatus]:
        return [
            RuleStatus(
                r.spec,
                r.armed,
                tuple(h for h, v in r.holds.items() if v),
                self.snoozed_until(r.spec.key),
            )
            for r in self._rules.values()
        ]

    # -- the state machine ----------------------------------------------------------------

    def observe(self, snap: HostSnapshot) -> list[Firing]:
        """Feed one host's snapshot; returns the rules that fire now (each at most once)."""
        host = snap.name
        firings: list[Firing] = []
        now = self._clock()
        for r in self._rules.values():
            if r.spec.event != "free" or not _relevant(r.spec, host):
                continue  # idle-holder rules: core/idle_rules.py
            holds, units = evaluate(r.spec, snap, self.thresholds_for)
            r.holds[host] = holds
            r.streak[host] = r.streak.get(host, 0) + 1 if holds else 0
            if not r.armed:
                if holds:
                    r.period_hosts.add(host)
                if not any(r.holds.values()) and all(
                    r.holds.get(h) is False for h in r.period_hosts
                ):
                    r.armed = True
                    r.period_hosts.clear()
            if (
                r.armed
                and holds
                and r.streak[host] >= self.confirm_polls
                and r.snoozed_until <= now
            ):
                r.armed = False
                r.period_hosts = {h for h, v in r.holds.items() if v}
                command = ssh_command(self._ssh_args_for(host), [u.cuda_id for u in units])
                firings.append(Firing(r.spec, host, units, command))
        return firings
