"""Where and how to reach a host: a [[hosts]] entry resolved against ~/.ssh/config.

A host that works with `ssh NAME` must work here, so the rules are OpenSSH's:
explicit settings in config.toml win (like ssh's command-line options), then
the first matching value in ~/.ssh/config, then the defaults. Each ProxyJump
hop is itself looked up in ~/.ssh/config, as ssh does.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import paramiko

from gpu_tray.core.settings import AuthMethod, HostConfig

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_JUMPS = 8  # ProxyJump chains that loop back on themselves stop here

_HOST_LINE = re.compile(r"^\s*Host(?:\s*=\s*|\s+)(.+?)\s*(?:#.*)?$", re.IGNORECASE)
_HOP = re.compile(r"^(?:(?P<user>[^@]+)@)?(?P<host>\[[^\]]+\]|[^:]+)(?::(?P<port>\d+))?$")


class TargetError(Exception):
    """The host cannot be reached as configured (e.g. an unsupported ssh_config option)."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    alias: str  # what the user calls it: the [[hosts]] name, or the hop as written
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    explicit_identities: bool = False  # IdentityFile was given (else the defaults)
    identities_only: bool = False
    jumps: tuple[SshTarget, ...] = ()
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    auth: AuthMethod | None = None
    host_key_alias: str | None = None
    known_hosts_files: tuple[str, ...] = field(default=())

    @property
    def host_id(self) -> str:
        """The name known_hosts uses: `host`, or `[host]:port` off port 22."""
        name = self.host_key_alias or self.hostname
        return name if self.port == 22 else f"[{name}]:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port}"

    @property
    def account(self) -> str:
        """The keyring account for this host's password: `user@host:port`."""
        return f"{self.user}@{self.hostname}:{self.port}"


def ssh_config_path() -> Path:
    return Path.home() / ".ssh" / "config"


def load_ssh_config(path: Path | None = None) -> paramiko.SSHConfig:
    """~/.ssh/config, or an empty config when there is none or it cannot be read."""
    path = path or ssh_config_path()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except FileNotFoundError:
        return paramiko.SSHConfig()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TargetError(f"Cannot read {path}: {exc}") from None


def ssh_config_hosts(text: str) -> list[str]:
    """Concrete `Host` names in file order (no wildcards or negations), for "Import from
    ~/.ssh/config". paramiko keeps no order, so the text is scanned."""
    names: list[str] = []
    for line in text.splitlines():
        m = _HOST_LINE.match(line)
        if not m:
            continue
        for name in m.group(1).split():
            name = name.strip('"')
            if name and not any(c in name for c in "*?!") and name not in names:
                names.append(name)
    return names


def resolve(host: HostConfig, ssh_config: paramiko.SSHConfig | None = None) -> SshTarget:
    """Resolve a [[hosts]] entry. Raises TargetError for what we cannot honour."""
    ssh_config = ssh_config if ssh_config is not None else load_ssh_config()
    target = _lookup(
        ssh_config,
        alias=host.name,
        lookup_name=host.hostname or host.name,
        user=host.user,
        port=host.port,
        identity_file=host.identity_file,
        auth=host.auth,
        jump_override=host.proxy_jump,
        depth=0,
        root=host.name,
    )
    return target


def parse_hop(hop: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` -> (user, host, port)."""
    m = _HOP.match(hop.strip())
    if not m:
        raise TargetError(f"ProxyJump hop {hop!r} is not [user@]host[:port]")
    port = int(m.group("port")) if m.group("port") else None
    return m.group("user"), m.group("host").strip("[]"), port


def _lookup(
    ssh_config: paramiko.SSHConfig,
    *,
    alias: str,
    lookup_name: str,
    user: str | None,
    port: int | None,
    identity_file: str | None,
    auth: AuthMethod | None,
    jump_override: str | None,
    depth: int,
    root: str,
) -> SshTarget:
    if depth > MAX_JUMPS:
        raise TargetError(f"ProxyJump for {root} goes more than {MAX_JUMPS} hops deep (a loop?)")
    opts = ssh_config.lookup(alias)
    if "proxycommand" in opts and jump_override is None and "proxyjump" not in opts:
        raise TargetError(
            f"{alias} uses ProxyCommand in ~/.ssh/config, which gpu-tray does not run; "
            "use ProxyJump instead"
        )
    hostname = opts.get("hostname", lookup_name) if lookup_name == alias else lookup_name
    final_port = port or _int(opts.get("port"), 22)
    final_user = user or opts.get("user") or getpass.getuser()
    if identity_file:
        identities = (_expand(identity_file),)
    else:
        identities = tuple(_expand(p) for p in opts.get("identityfile", []))
    explicit = bool(identities)
    if not identities:
        ssh_dir = Path.home() / ".ssh"
        identities = tuple(str(ssh_dir / n) for n in DEFAULT_IDENTITIES)
    timeout = _float(opts.get("connecttimeout"), DEFAULT_CONNECT_TIMEOUT_S)
    jump_text = jump_override if jump_override is not None else opts.get("proxyjump")
    jumps: list[SshTarget] = []
    if jump_text and jump_text.lower() != "none":
        for hop in jump_text.split(","):
            hop_user, hop_host, hop_port = parse_hop(hop)
            hop_target = _lookup(
                ssh_config,
                alias=hop_host,
                lookup_name=hop_host,
                user=hop_user,
                port=hop_port,
                identity_file=None,
                auth=None,
                jump_override=None,
                depth=depth + 1,
                root=root,
            )
            # A hop reached through its own ProxyJump: those hops come first.
            jumps.extend(hop_target.jumps)
            jumps.append(replace(hop_target, jumps=()))
    known = tuple(_expand(p) for f in _as_list(opts.get("userknownhostsfile")) for p in f.split())
    return SshTarget(
        alias=alias,
        hostname=hostname,
        port=final_port,
        user=final_user,
        identity_files=identities,
        explicit_identities=explicit,
        identities_only=str(opts.get("identitiesonly", "no")).lower() == "yes",
        jumps=tuple(jumps),
        connect_timeout_s=timeout,
        auth=auth,
        host_key_alias=opts.get("hostkeyalias"),
        known_hosts_files=known,
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _float(value: object, default: float) -> float:
    try:
        result = float(str(value))
    except (TypeError, ValueError):
        return default
    return result if result > 0 else default
