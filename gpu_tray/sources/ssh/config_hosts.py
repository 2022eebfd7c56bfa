"""The `Host` entries of ~/.ssh/config that can be imported as [[hosts]]. Qt-free.

Listed in file order (people group their GPU boxes together), without
wildcard or negated patterns, each with what ssh would use for it, so the
checklist can say "alice@10.0.0.3:2222 via bastion". Importing keeps only the
name: ~/.ssh/config stays the one place that says how to reach the host.

The names come from the `Host` lines in file order (`ssh_config_hosts`); the
details from paramiko's `lookup()`, which is what the SSH source uses too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import paramiko

from gpu_tray.core.digits import int_or
from gpu_tray.sources.ssh.target import ssh_config_hosts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SshHostEntry:
    name: str
    hostname: str
    user: str | None
    port: int | None
    proxy_jump: str | None

    @property
    def summary(self) -> str:
        """'alice@10.0.0.3:2222 via bastion' (only what the file sets)."""
        text = self.hostname
        if self.user:
            text = f"{self.user}@{text}"
        if self.port and self.port != 22:
            text = f"{text}:{self.port}"
        if self.proxy_jump:
            text += f" via {self.proxy_jump}"
        return text


class SshConfigError(Exception):
    """~/.ssh/config exists but cannot be read; str() says why, for the user."""


def default_ssh_config_path() -> Path:
    return Path.home() / ".ssh" / "config"


def importable_hosts(path: Path | None = None) -> list[SshHostEntry]:
    """Blocking (reads a file): call it off the GUI thread. [] when there is no file."""
    path = path or default_ssh_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SshConfigError(f"Cannot read {path}: {exc}") from None
    try:
        config = paramiko.SSHConfig.from_text(text)
    except Exception as exc:  # paramiko raises several types for bad files
        raise SshConfigError(f"Cannot parse {path}: {exc}") from None
    entries: list[SshHostEntry] = []
    for name in ssh_config_hosts(text):
        entries.append(_entry(config, name))
    return entries


def _entry(config: paramiko.SSHConfig, name: str) -> SshHostEntry:
    try:
        opts = config.lookup(name)
    except Exception as exc:  # e.g. `Match exec` without the invoke package
        log.info("ssh config lookup for %s failed: %s", name, exc)
        return SshHostEntry(name, name, None, None, None)
    port = opts.get("port")
    return SshHostEntry(
        name=name,
        hostname=opts.get("hostname", name),
        user=opts.get("user"),
        port=int_or(str(port)) if port else None,
        proxy_jump=opts.get("proxyjump"),
    )
