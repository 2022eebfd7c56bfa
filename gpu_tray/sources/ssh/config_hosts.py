"""The `Host` entries of ~/.ssh/config that can be imported as [[hosts]]. Qt-free.

Listed in file order (people group their GPU boxes together), without
wildcard or negated patterns, each with what ssh would use for it, so the
checklist can say "alice@10.0.0.3:2222 via bastion". Importing keeps only the
name: ~/.ssh/config stays the one place that says how to reach the host.

The names come from the `Host` lines in file order, included files too; the
details from the same lookup the SSH source uses (`target.resolve`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.ssh_config import SshConfig
from gpu_tray.sources.ssh.target import TargetError, resolve

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
    if not path.exists():
        return []
    try:
        path.read_bytes()  # a folder or an unreadable file: say so, as before
    except OSError as exc:
        raise SshConfigError(f"Cannot read {path}: {exc}") from None
    config = SshConfig.from_path(path)
    try:
        names = config.host_names()
    except TargetError as exc:  # an included file that cannot be read
        raise SshConfigError(f"Cannot read {path}: {exc}") from None
    return [_entry(config, name) for name in names]


def _entry(config: SshConfig, name: str) -> SshHostEntry:
    try:
        target = resolve(HostConfig(name), config)
    except TargetError as exc:  # e.g. `Match exec`, or a ProxyCommand: shown as not resolved
        log.info("ssh config lookup for %s failed: %s", name, exc)
        return SshHostEntry(name, name, None, None, None)
    opts = config.lookup(name)
    port = opts.get("port")
    user = opts.get("user")
    jump = opts.get("proxyjump")
    return SshHostEntry(
        name=name,
        hostname=target.hostname,
        user=user.first if user is not None else None,
        port=target.port if port is not None else None,
        proxy_jump=jump.raw if jump is not None and jump.raw.lower() != "none" else None,
    )
