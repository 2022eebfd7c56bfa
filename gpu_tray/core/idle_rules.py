"""Notifications about idle holders: `[[watch]] event = "idle_holder"` and the
optional reminder about your own idle GPUs (`[idle] remind_after_min`).

Both fire at most once per idle stretch of a unit: the stretch is known by its
start (`Stretch.start`), so a GPU that wakes up and idles again is a new
stretch and may fire again, while one that stays idle never fires twice.
Firings go through the normal notification path (`Firing`, with `event`,
`summary`, `text` and `facts` set); `Firing.payload()` is what a channel sends.

The reminder's command is built as an argv (`ssh [ssh args] ps -o
pid,etime,args -p PID,...`) and only quoted for display: nothing from config or
the remote side is ever run through a shell here.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence

from gpu_tray.core.idle import IdleTracker, Stretch, UnitKey, duration_text, iso_utc
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.rules import Firing
from gpu_tray.core.settings import IdleSettings, WatchSpec

SshArgsFor = Callable[[str], Sequence[str]]


def unit_label(key: UnitKey) -> str:
    _host, gpu, mig = key
    return f"GPU {gpu}" if mig is None else f"GPU {gpu} MIG {mig}"


def unit_pids(snap: HostSnapshot, key: UnitKey, user: str | None = None) -> list[int]:
    """PIDs on a unit (of `user` only, when given), in the order nvidia-smi listed them."""
    _host, gpu_index, mig_index = key
    for gpu in snap.gpus:
        if gpu.index != gpu_index:
            continue
        procs = gpu.processes
        if mig_index is not None:
            procs = next((m.processes for m in gpu.mig_devices if m.index == mig_index), ())
        return list(
            dict.fromkeys(
                p.pid for p in procs if p.pid is not None and (user is None or p.user == user)
            )
        )
    return []


def ps_argv(ssh_args: Sequence[str], pids: Iterable[int]) -> list[str]:
    """`ssh [args] ps -o pid,etime,args -p 1,2`: see the processes holding a GPU."""
    argv = ["ssh", *ssh_args]
    if ssh_args and ssh_args[-1].startswith("-"):
        argv.insert(len(argv) - 1, "--")  # a destination starting with "-" is not an option
    return [*argv, "ps", "-o", "pid,etime,args", "-p", ",".join(str(p) for p in pids)]


def _scope(spec: WatchSpec, key: UnitKey) -> bool:
    host, gpu, _mig = key
    if spec.host is not None and spec.host != host:
        return False
    return spec.gpu is None or spec.gpu == gpu


class IdleRules:
    """Decides, after each poll of a host, which idle notifications to send."""

    def __init__(
        self,
        specs: Iterable[WatchSpec],
        settings: IdleSettings,
        *,
        own_user: Callable[[str], str | None] = lambda _host: None,
        ssh_args_for: SshArgsFor = lambda host: [host],
    ) -> None:
        self.settings = settings
        self.specs = [s for s in specs if s.event == "idle_holder"]
        self.own_user = own_user
        self.ssh_args_for = ssh_args_for
        # (rule key or "remind", unit) -> start of the stretch it fired for.
        self._fired: dict[tuple[str, UnitKey], float] = {}

    def set_specs(self, specs: Iterable[WatchSpec]) -> None:
        self.specs = [s for s in specs if s.event == "idle_holder"]

    def observe(self, snap: HostSnapshot, tracker: IdleTracker, now: float) -> list[Firing]:
        """Firings for the units of `snap`'s host (call after `tracker.observe(snap)`)."""
        host = snap.name
        firings: list[Firing] = []
        held = {k: s for k, s in tracker.held_idle(now).items() if k[0] == host}
        for key, stretch in held.items():
            for spec in self.specs:
                if _scope(spec, key) and self._first(spec.key, key, stretch):
                    firings.append(self._holder(spec, snap, key, stretch, now))
        remind = self.settings.remind_after_min
        me = self.own_user(host) if remind is not None else None
        if remind is not None and me:
            for key in [k for k in tracker.units() if k[0] == host]:
                stretch = tracker.stretch(key)
                if stretch.start is None or now - stretch.start < remind * 60:
                    continue
                if me in stretch.users and self._first("remind", key, stretch):
                    firings.append(self._reminder(snap, key, stretch, me, now))
        # Forget stretches that ended, so memory follows the units, not the history.
        for mark in [m for m in self._fired if m[1][0] == host]:
            if tracker.stretch(mark[1]).start != self._fired[mark]:
                del self._fired[mark]
        return firings

    def _first(self, rule: str, key: UnitKey, stretch: Stretch) -> bool:
        assert stretch.start is not None
        if self._fired.get((rule, key)) == stretch.start:
            return False
        self._fired[(rule, key)] = stretch.start
        return True

    def _facts(
        self, key: UnitKey, stretch: Stretch, pids: list[int], now: float
    ) -> tuple[tuple[str, object], ...]:
        _host, gpu, mig = key
        return (
            ("gpu", gpu),
            ("mig", mig),
            ("users", list(stretch.users)),
            ("pids", pids),
            ("idle_since", iso_utc(stretch.start)),
            ("idle_s", int(now - (stretch.start or now))),
            ("max_utilization_pct", self.settings.max_utilization_pct),
        )

    def _holder(
        self, spec: WatchSpec, snap: HostSnapshot, key: UnitKey, stretch: Stretch, now: float
    ) -> Firing:
        host = key[0]
        pids = unit_pids(snap, key)
        who = ", ".join(stretch.users) or "an unknown user"
        idle = duration_text(now - (stretch.start or now))
        line = (
            f"{host}: {unit_label(key)} held by {who}, "
            f"idle {idle} (at most {self.settings.max_utilization_pct}%)"
        )
        return Firing(
            spec,
            host,
            [],
            shlex.join(ps_argv(self.ssh_args_for(host), pids)) if pids else "",
            event="idle_holder",
            summary=f"GPU held idle on {host}",
            text=(line,),
            facts=self._facts(key, stretch, pids, now),
        )

    def _reminder(
        self, snap: HostSnapshot, key: UnitKey, stretch: Stretch, me: str, now: float
    ) -> Firing:
        host = key[0]
        pids = unit_pids(snap, key, me)
        command = shlex.join(ps_argv(self.ssh_args_for(host), pids)) if pids else ""
        idle = duration_text(now - (stretch.start or now))
        lines = [f"{host}: your {unit_label(key)} has been idle for {idle}"]
        if command:
            lines.append(f"See it: {command}")
        return Firing(
            WatchSpec(host=host, gpu=key[1], event="idle_holder"),
            host,
            [],
            command,
            event="idle_reminder",
            summary=f"Your GPU on {host} is idle",
            text=tuple(lines),
            facts=self._facts(key, stretch, pids, now),
        )


def own_users(hosts: Mapping[str, str | None]) -> Callable[[str], str | None]:
    """`own_user` from a host -> remote user map (resolved as SSH resolves it)."""
    return lambda host: hosts.get(host)
