"""Where and how to reach a host: a [[hosts]] entry resolved against ~/.ssh/config.

A host that works with `ssh NAME` must work here, so the rules are OpenSSH's:
explicit settings in config.toml win (like ssh's command-line options), then
the first matching value in ~/.ssh/config, then the defaults. Each ProxyJump
hop is itself looked up in ~/.ssh/config, as ssh does.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from gpu_tray.core.settings import AuthMethod, HostConfig
from gpu_tray.sources.ssh.errors import TargetError
from gpu_tray.sources.ssh.jumps import Hop, format_hop, parse_hops
from gpu_tray.sources.ssh.jumps import parse_hop as _parse_hop
from gpu_tray.sources.ssh.ssh_config import (
    NAME_GIVEN,
    SYSTEM_DIR,
    Origin,
    SshConfig,
    SshConfigError,
    SshOptions,
    Value,
    parse_port,
)
from gpu_tray.sources.ssh.ssh_config_lex import LexError, ascii_lower, split_args, split_line
from gpu_tray.sources.ssh.ssh_tokens import PATH_TOKENS, PROXY_TOKENS, convtime, expand, tilde

__all__ = ["SshConfig", "SshConfigError", "SshTarget", "TargetError", "parse_hop", "resolve"]

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_JUMPS = 8  # ProxyJump chains that loop back on themselves stop here

CONFIG_TOML = Origin("config.toml")


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
    #: Where each value came from: ("hostname", "/home/a/.ssh/config:12"), ... ;
    #: identity files as "identity_file:N" (N from 0). Absent: a default.
    origins: tuple[tuple[str, str], ...] = ()

    def origin(self, name: str) -> str | None:
        return dict(self.origins).get(name)

    @property
    def hop(self) -> str:
        """`user@host:port`, as `hosts show` lists a jump."""
        return format_hop(self.user, self.hostname, self.port)

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


def load_ssh_config(path: Path | None = None) -> SshConfig:
    """~/.ssh/config, then /etc/ssh/ssh_config, as `ssh NAME` reads them (afresh on each
    lookup; a missing file is empty). With `path`, that file alone, like `ssh -F`."""
    if path is not None:
        return SshConfig.from_path(path)
    return SshConfig(path=ssh_config_path(), system_path=SYSTEM_DIR / "ssh_config")


def ssh_config_hosts(text: str) -> list[str]:
    """Concrete `Host` names of one file's text in file order (no wildcards or negations).
    Includes are followed by `SshConfig.host_names()`; this reads the text alone."""
    names: list[str] = []
    for line in text.splitlines():
        try:
            parsed = split_line(line)
            if parsed is None or parsed[0] != "host":
                continue
            args = split_args(parsed[1])
        except LexError:
            continue
        for name in args:
            if name and not any(c in name for c in "*?!") and name not in names:
                names.append(name)
    return names


def resolve(host: HostConfig, ssh_config: SshConfig | None = None) -> SshTarget:
    """Resolve a [[hosts]] entry. Raises TargetError (SshConfigError, naming the file and
    line, for what the ssh config says that gpu-tray cannot or will not honour)."""
    config = ssh_config if ssh_config is not None else load_ssh_config()
    preset: dict[str, Value] = {}
    # config.toml's settings win over ~/.ssh/config, like ssh's command-line options.
    if host.hostname:
        preset["hostname"] = Value((host.hostname,), host.hostname, CONFIG_TOML)
    if host.user:
        preset["user"] = Value((host.user,), host.user, CONFIG_TOML)
    if host.port:
        preset["port"] = Value((str(host.port),), str(host.port), CONFIG_TOML)
    if host.proxy_jump:
        preset["proxyjump"] = Value((host.proxy_jump,), host.proxy_jump, CONFIG_TOML)
        preset["proxycommand"] = Value(("none",), "none", CONFIG_TOML)
    target = _target(config, host.name, preset, own_jumps=True, depth=0, root=host.name)
    if host.identity_file:
        target = replace(
            target,
            identity_files=(_expand_path(host.identity_file),),
            explicit_identities=True,
            origins=(*[o for o in target.origins if not o[0].startswith("identity_file")],
                     ("identity_file:0", str(CONFIG_TOML))),
        )  # fmt: skip
    return replace(target, auth=host.auth)


def parse_hop(hop: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` -> (user, host, port)."""
    try:
        h = _parse_hop(hop.strip())
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    return h.user, h.host, h.port


def _target(
    config: SshConfig,
    name: str,
    preset: dict[str, Value],
    *,
    own_jumps: bool,
    depth: int,
    root: str,
) -> SshTarget:
    if depth > MAX_JUMPS:
        raise TargetError(f"ProxyJump for {root} goes more than {MAX_JUMPS} hops deep (a loop?)")
    opts = config.lookup(name, preset)
    _refuse_proxy_command(opts)
    origins: list[tuple[str, str]] = []

    def note(field_name: str, value: Value | None) -> None:
        if value is not None and value.origin != NAME_GIVEN:
            origins.append((field_name, str(value.origin)))

    port_value = opts.get("port")
    port = 22
    if port_value is not None:
        port = _checked(port_value, lambda: parse_port(port_value.first))
    user_value = opts.get("user")
    user = user_value.first if user_value is not None else getpass.getuser()
    note("hostname", opts.get("hostname"))
    note("port", port_value)
    note("user", user_value)
    alias = opts.get("hostkeyalias")
    tokens = _path_tokens(opts, port, user, alias.first if alias is not None else None)

    identities: list[str] = []
    for i, v in enumerate(opts.all("identityfile")):
        identities.append(_expand_value(v, tokens))
        origins.append((f"identity_file:{i}", str(v.origin)))
    explicit = bool(identities)
    if not identities:
        ssh_dir = Path.home() / ".ssh"
        identities = [str(ssh_dir / n) for n in DEFAULT_IDENTITIES]

    known: tuple[str, ...] = ()
    if (kv := opts.get("userknownhostsfile")) is not None:
        note("known_hosts_files", kv)
        if [ascii_lower(a) for a in kv.args] == ["none"]:
            known = (os.devnull,)
        else:
            known = tuple(_expand_value(Value((a,), a, kv.origin), tokens) for a in kv.args)

    timeout = DEFAULT_CONNECT_TIMEOUT_S
    if (tv := opts.get("connecttimeout")) is not None:
        note("connect_timeout_s", tv)
        if ascii_lower(tv.first) != "none":
            seconds = _checked(tv, lambda: convtime(tv.first))
            timeout = float(seconds) if seconds > 0 else DEFAULT_CONNECT_TIMEOUT_S

    only = opts.get("identitiesonly")
    note("identities_only", only)
    note("host_key_alias", alias)
    jumps: list[SshTarget] = []
    jv = opts.get("proxyjump")
    if own_jumps and jv is not None and ascii_lower(jv.first) != "none":
        note("proxy_jump", jv)
        values = {"h": opts.hostname, "n": name, "p": str(port), "r": user}
        text = _checked(jv, lambda: expand(jv.raw, values, PROXY_TOKENS))
        hops = _checked(jv, lambda: parse_hops(text))
        for i, hop in enumerate(hops):
            # ssh reaches hops a,b,c as `ssh -J a,b c`: the first hop is looked up alone
            # (its own ProxyJump counts), the later ones behind -J (theirs do not).
            hop_target = _target(
                config,
                hop.host,
                _hop_preset(hop, jv.origin, first=i == 0),
                own_jumps=i == 0,
                depth=depth + 1,
                root=root,
            )
            jumps.extend(hop_target.jumps)
            jumps.append(replace(hop_target, jumps=()))
    return SshTarget(
        alias=name,
        hostname=opts.hostname,
        port=port,
        user=user,
        identity_files=tuple(identities),
        explicit_identities=explicit,
        identities_only=only is not None and ascii_lower(only.first) == "yes",
        jumps=tuple(jumps),
        connect_timeout_s=timeout,
        host_key_alias=alias.first if alias is not None else None,
        known_hosts_files=known,
        origins=tuple(origins),
    )


def _hop_preset(hop: Hop, origin: Origin, first: bool) -> dict[str, Value]:
    preset: dict[str, Value] = {}
    if hop.user:
        preset["user"] = Value((hop.user,), hop.user, origin)
    if hop.port:
        preset["port"] = Value((str(hop.port),), str(hop.port), origin)
    if not first:
        # Behind -J: the hop's own ProxyJump and ProxyCommand are not used.
        preset["proxyjump"] = Value(("none",), "none", origin)
        preset["proxycommand"] = Value(("none",), "none", origin)
    return preset


def _refuse_proxy_command(opts: SshOptions) -> None:
    pc = opts.get("proxycommand")
    if pc is None or (len(pc.args) == 1 and ascii_lower(pc.first) == "none"):
        return
    raise SshConfigError(
        f"{opts.host_arg} uses ProxyCommand, which runs a shell command, and gpu-tray never "
        "runs shell commands; use ProxyJump instead",
        pc.origin.file,
        pc.origin.line,
    )


def _path_tokens(opts: SshOptions, port: int, user: str, alias: str | None) -> dict[str, str]:
    """The values of %C %d %h %i %k %L %l %n %p %r %u for file names (ssh_config(5))."""
    local = socket.gethostname()
    host = opts.hostname
    return {
        "C": hashlib.sha1(f"{local}{host}{port}{user}".encode()).hexdigest(),
        "d": str(Path.home()),
        "h": host,
        "i": str(os.getuid()) if hasattr(os, "getuid") else "0",
        "k": alias or opts.host_arg,
        "L": local.split(".", 1)[0],
        "l": local,
        "n": opts.host_arg,
        "p": str(port),
        "r": user,
        "u": getpass.getuser(),
    }


def _expand_value(value: Value, tokens: dict[str, str]) -> str:
    """A file name from ssh_config: `~` first, then %-tokens and ${VAR} in one scan."""
    try:
        return expand(tilde(value.first, Path.home()), tokens, PATH_TOKENS, dollar=True)
    except LexError as exc:  # say it about the value as written, not as half expanded
        message = str(exc).split(" in '", 1)[0]
        raise SshConfigError(f"{message} in {value.first!r}", value.origin.file,
                             value.origin.line) from None  # fmt: skip


_T = TypeVar("_T")


def _checked(value: Value, compute: Callable[[], _T]) -> _T:
    """Run `compute`; a LexError/ValueError becomes an SshConfigError at the value's line."""
    try:
        return compute()
    except (LexError, ValueError) as exc:
        raise SshConfigError(str(exc), value.origin.file, value.origin.line) from None


def _expand_path(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))
