"""Slurm source: GPUs per node, allocated or not, from sinfo/squeue on a login node.

One constant script per poll, run over the SSH machinery (`ssh_session.SshSession`)
on the login node. Nothing from the config or the remote side is ever put into
the script. "Free" from Slurm means "not allocated by Slurm"; joining with a
measuring source (SSH or Prometheus) is in `gpu_tray.core.join`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gpu_tray.core.models import HostKeyInfo, HostSnapshot, HostState, utcnow
from gpu_tray.core.settings import Config, HostConfig, SourceConfig
from gpu_tray.sources.base import SecretLookup
from gpu_tray.sources.slurm.parse import (
    ParseStats,
    node_snapshots,
    parse_end_times,
    parse_job_detail,
    parse_sinfo,
    parse_squeue,
)

DEFAULT_TIMEOUT_S = 30.0
MARK = "@@gpu-tray"

# Widths of 0 print each field whole (no padding, no truncation); `|` closes each
# field. Free-text fields (Reason, Name) come last: they may contain `|`.
SINFO_FORMAT = "NodeList:0|,StateLong:0|,Gres:0|,GresUsed:0|,Partition:0|,Reason:0|"
SQUEUE_FORMAT = "JobID:0|,UserName:0|,NodeList:0|,tres-per-node:0|,tres-per-job:0|,Name:0|"
# When running jobs end: a section of its own, so the one above keeps its shape.
# Run with TZ=UTC: squeue prints times in local time without a zone.
ENDS_FORMAT = "JobID:0|,EndTime:0|,TimeLimit:0|"

# The one command run per poll. POSIX sh, constant: see DESIGN.md "Polling".
# The job detail (which GPU indices each running job holds) is cut down on the
# login node, so a cluster with thousands of queued jobs does not ship them all.
POLL_SCRIPT = f"""\
LC_ALL=C; export LC_ALL
if ! command -v sinfo >/dev/null 2>&1; then echo '{MARK} missing sinfo'; exit 127; fi
echo '{MARK} sinfo'
sinfo -h -N -O '{SINFO_FORMAT}' 2>&1
echo "{MARK} rc $?"
echo '{MARK} squeue'
squeue -h -t RUNNING -O '{SQUEUE_FORMAT}' 2>&1
echo "{MARK} rc $?"
echo '{MARK} ends'
TZ=UTC squeue -h -t RUNNING -O '{ENDS_FORMAT}' 2>&1
echo "{MARK} rc $?"
echo '{MARK} jobs'
scontrol -o -d show job 2>/dev/null | grep 'JobState=RUNNING' \\
  | grep -o -E '^JobId=[^ ]+|Nodes=[^ ]+ CPU_IDs=[^ ]+ Mem=[^ ]+ GRES=[^ ]+'
echo "{MARK} rc 0"
"""


@dataclass(frozen=True, slots=True)
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit_status: int
    latency_ms: float


class CommandFailure(Exception):
    """The command could not be run at all (connection, auth, host key, timeout)."""

    def __init__(self, state: HostState, message: str, host_key: HostKeyInfo | None = None) -> None:
        super().__init__(message)
        self.state, self.message, self.host_key = state, message, host_key


class Runner(Protocol):
    """Runs the constant poll script somewhere: over SSH on the login node, or locally."""

    def run(self, command: str, timeout_s: float) -> CommandResult: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class SshRunner:
    """The login node over the shared SSH machinery (one persistent connection)."""

    def __init__(self, host: HostConfig, secrets: SecretLookup) -> None:
        self.host = host
        self.secrets = secrets
        self._session = None

    def run(self, command: str, timeout_s: float) -> CommandResult:
        try:
            from gpu_tray.sources.ssh.session import SshFailure, SshSession
        except ImportError:
            raise CommandFailure(
                HostState.UNREACHABLE, "This build of gpu-tray has no SSH support"
            ) from None
        if self._session is None:
            self._session = SshSession(self.host, self.secrets)
        try:
            r = self._session.run(command, timeout_s)
        except SshFailure as exc:
            raise CommandFailure(exc.state, exc.message, exc.host_key) from None
        return CommandResult(r.stdout, r.stderr, r.exit_status, r.latency_ms)

    def reset(self) -> None:
        if self._session is not None:
            self._session.reset()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class LocalRunner:
    """Runs the script on this machine: for a desktop that is itself a login node,
    and for tests of the probe against a real Slurm without SSH."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env) if env is not None else None

    def run(self, command: str, timeout_s: float) -> CommandResult:
        start = time.monotonic()
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", command],
                capture_output=True,
                timeout=timeout_s,
                env=self.env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise CommandFailure(
                HostState.TIMEOUT, f"Slurm commands did not finish within {timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise CommandFailure(HostState.UNREACHABLE, f"Cannot run sh: {exc.strerror}") from None
        latency = (time.monotonic() - start) * 1000.0
        return CommandResult(proc.stdout, proc.stderr, proc.returncode, latency)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def login_host(source: SourceConfig, config: Config) -> HostConfig:
    """The [[hosts]] entry named like the login node (user, port, proxy...), or just
    the name, which ~/.ssh/config then resolves."""
    login = source.login or ""
    for host in config.hosts:
        if host.name == login:
            return host
    return HostConfig(name=login)


@dataclass(frozen=True, slots=True)
class Sections:
    bodies: dict[str, str]
    codes: dict[str, int]
    missing_sinfo: bool


def split_sections(text: str) -> Sections:
    bodies: dict[str, list[str]] = {}
    codes: dict[str, int] = {}
    current: str | None = None
    missing = False
    for line in text.splitlines():
        if line.startswith(MARK + " "):
            word = line[len(MARK) + 1 :].strip()
            if word == "missing sinfo":
                missing = True
            elif word.startswith("rc "):
                if current is not None:
                    m = re.match(r"rc ([0-9]+)$", word)
                    codes[current] = int(m.group(1)) if m else 1
                current = None
            else:
                current = word
                bodies[current] = []
            continue
        if current is not None:
            bodies[current].append(line)
    return Sections({k: "\n".join(v) for k, v in bodies.items()}, codes, missing)


class SlurmProbe:
    kind = "slurm"

    def __init__(
        self,
        source: SourceConfig,
        config: Config,
        secrets: SecretLookup,
        runner: Runner | None = None,
    ) -> None:
        self.source = source
        self.login = source.login or ""
        # Also the name of the one snapshot reported before any node is known, so
        # that the poller's reset(name) and the trust flow find this probe by it.
        self.source_name = self.name = source.name or f"slurm:{self.login}"
        self.timeout_s = float(source.options.get("timeout_s", DEFAULT_TIMEOUT_S))  # type: ignore[arg-type]
        parts = source.options.get("partitions")
        self.partitions = tuple(parts) if isinstance(parts, list | tuple) else None
        self.runner: Runner = runner or SshRunner(login_host(source, config), secrets)
        self._known: dict[str, None] = {}

    def expected_hosts(self) -> tuple[str, ...]:
        return tuple(self._known)

    def poll(self) -> list[HostSnapshot]:
        polled_at = utcnow()
        try:
            result = self.runner.run(POLL_SCRIPT, self.timeout_s)
        except CommandFailure as f:
            return self._failed(f.state, f.message, polled_at, f.host_key)
        text = result.stdout.decode("utf-8", errors="replace")
        sections = split_sections(text)
        if sections.missing_sinfo:
            return self._failed(
                HostState.BAD_OUTPUT,
                f"sinfo not found on {self.login}: is Slurm's client installed there, "
                "and on the PATH of a non-interactive shell?",
                polled_at,
            )
        if "sinfo" not in sections.bodies or "sinfo" not in sections.codes:
            detail = _first_line(result.stderr.decode("utf-8", errors="replace") or text)
            return self._failed(
                HostState.BAD_OUTPUT,
                f"Unexpected answer from {self.login} (exit status {result.exit_status})"
                + (f": {detail}" if detail else ""),
                polled_at,
            )
        if sections.codes["sinfo"] != 0:
            return self._failed(*self._sinfo_failure(sections.bodies["sinfo"]), polled_at)
        stats = ParseStats()
        nodes = parse_sinfo(sections.bodies["sinfo"], stats)
        if stats.bad_lines and not nodes:
            return self._failed(
                HostState.BAD_OUTPUT,
                f"Could not read sinfo's output on {self.login}: {stats.first_bad!r}",
                polled_at,
            )
        jobs = None
        if sections.codes.get("squeue") == 0:
            jobs = parse_squeue(sections.bodies.get("squeue", ""))
        detail = parse_job_detail(sections.bodies.get("jobs", ""))
        ends = None
        if sections.codes.get("ends") == 0:
            ends = parse_end_times(sections.bodies.get("ends", ""))
        snaps = node_snapshots(
            nodes,
            jobs,
            detail,
            polled_at,
            result.latency_ms,
            partitions=self.partitions,
            ends=ends,
        )
        for s in snaps:
            self._known.setdefault(s.name, None)
        if not snaps:
            where = f" in partitions {', '.join(self.partitions)}" if self.partitions else ""
            return [
                HostSnapshot(
                    self.source_name,
                    HostState.BAD_OUTPUT,
                    f"Slurm on {self.login} reports no node with GPUs (gres/gpu){where}",
                    polled_at=polled_at,
                    latency_ms=result.latency_ms,
                    source=self.kind,
                )
            ]
        return snaps

    def _sinfo_failure(self, output: str) -> tuple[HostState, str]:
        line = _first_line(output) or "no message"
        state = HostState.BAD_OUTPUT
        if "Unable to contact slurm controller" in output or "Socket timed out" in output:
            state = HostState.UNREACHABLE
        return state, f"sinfo failed on {self.login}: {line}"

    def _failed(
        self,
        state: HostState,
        message: str,
        polled_at: datetime,
        host_key: HostKeyInfo | None = None,
    ) -> list[HostSnapshot]:
        names = list(self._known) or [self.source_name]
        return [
            HostSnapshot(
                name, state, message, polled_at=polled_at, source=self.kind, host_key=host_key
            )
            for name in names
        ]

    def reset(self) -> None:
        self.runner.reset()

    def close(self) -> None:
        self.runner.close()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = " ".join(line.split())
        if line and not line.startswith(MARK):
            # Slurm prefixes its errors with the command name; keep the message.
            return re.sub(r"^(sinfo|squeue|scontrol): (error: )?", "", line)[:200]
    return ""


def local_env(slurm_conf: str | None = None) -> dict[str, str]:
    """The environment for LocalRunner, optionally pointing at a slurm.conf."""
    env = dict(os.environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    return env
