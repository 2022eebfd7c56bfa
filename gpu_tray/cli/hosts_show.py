"""`gpu-tray hosts show NAME [--json]`: what gpu-tray will connect to, like `ssh -G`.

NAME is a [[hosts]] entry of config.toml (its settings win, like ssh's command-line
options) or, when config.toml has no such entry, a name looked up in ~/.ssh/config
alone. Every value says where it came from: a file and line, config.toml, or a default.

The JSON is a public interface: `name`, `hostname`, `port`, `user`, `proxy_jump` (a
list of `user@host:port`, in the order they are reached) and `identity_files` (a list)
are always there; more keys may be added.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_tray.cli.common import Usage, config_path_of
from gpu_tray.core.settings import HostConfig

if TYPE_CHECKING:
    from gpu_tray.sources.ssh.target import SshTarget

DEFAULT = "default"


def add_show_parser(
    hosts: argparse._SubParsersAction, add_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    show = hosts.add_parser(
        "show", help="what gpu-tray will connect to for a host, and where each value comes from"
    )
    add_options(show)
    show.add_argument("name", metavar="NAME", help="a host in config.toml, or an ssh alias")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument(
        "--ssh-config",
        metavar="FILE",
        dest="ssh_config",
        help="read this ssh_config instead of ~/.ssh/config (like ssh -F)",
    )


def run_show(args: argparse.Namespace) -> int:
    from gpu_tray.sources.ssh.host_keys import app_known_hosts_path, user_known_hosts_files
    from gpu_tray.sources.ssh.target import SshConfig, TargetError, load_ssh_config, resolve

    host, in_config = _host(args)
    config = SshConfig.from_path(args.ssh_config) if args.ssh_config else load_ssh_config()
    try:
        target = resolve(host, config)
    except TargetError as exc:
        raise Usage(f"hosts show {args.name}: {exc}") from None
    known = list(target.known_hosts_files) or [str(p) for p in user_known_hosts_files()]
    known.append(str(app_known_hosts_path()))
    hops = [
        {
            "name": hop.alias,
            "hostname": hop.hostname,
            "port": hop.port,
            "user": hop.user,
            "origins": _origins(hop),
        }
        for hop in target.jumps
    ]
    report = {
        "name": host.name,
        "hostname": target.hostname,
        "port": target.port,
        "user": target.user,
        "proxy_jump": [hop.hop for hop in target.jumps],
        "identity_files": list(target.identity_files),
        "known_hosts_files": known,
        "connect_timeout_s": target.connect_timeout_s,
        "host_key_alias": target.host_key_alias,
        "identities_only": target.identities_only,
        "auth": host.auth,
        "in_config_toml": in_config,
        "ssh_config": config.name,
        "origins": _origins(target),
        "jumps": hops,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(_table(report, target))
    return 0


def _host(args: argparse.Namespace) -> tuple[HostConfig, bool]:
    """The [[hosts]] entry called NAME, or a bare name when config.toml has none."""
    from gpu_tray.core.config import ConfigError, load_config

    path = config_path_of(args)
    if not path.exists():
        return HostConfig(args.name), False
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise Usage(str(exc)) from None
    for host in config.hosts:
        if host.name == args.name:
            return host, True
    return HostConfig(args.name), False


def _origins(target: SshTarget) -> dict[str, object]:
    identities = [target.origin(f"identity_file:{i}") for i in range(len(target.identity_files))]
    return {
        "hostname": target.origin("hostname"),
        "port": target.origin("port"),
        "user": target.origin("user"),
        "proxy_jump": target.origin("proxy_jump"),
        "identity_files": identities,
        "known_hosts_files": target.origin("known_hosts_files"),
        "connect_timeout_s": target.origin("connect_timeout_s"),
    }


def _table(report: dict[str, Any], target: SshTarget) -> str:
    origins = report["origins"]
    home = str(Path.home())

    def where(origin: object) -> str:
        if origin is None:
            return DEFAULT
        text = str(origin)
        return "~" + text[len(home) :] if text.startswith(home + "/") else text

    rows: list[tuple[str, str, str]] = [
        ("hostname", report["hostname"], where(origins["hostname"] or "the name itself")),
        ("port", str(report["port"]), where(origins["port"])),
        ("user", report["user"], where(origins["user"])),
    ]
    for i, (hop, detail) in enumerate(zip(report["proxy_jump"], report["jumps"], strict=True)):
        label = "proxy jump" if i == 0 else ""
        hop_where = where(origins["proxy_jump"]) if i == 0 else ""
        rows.append((label, f"{hop} ({detail['name']})", hop_where))
    if not report["proxy_jump"]:
        rows.append(("proxy jump", "none", where(origins["proxy_jump"])))
    for i, path in enumerate(report["identity_files"]):
        rows.append(("identity file" if i == 0 else "", path, where(origins["identity_files"][i])
                     if target.explicit_identities else DEFAULT))  # fmt: skip
    for i, path in enumerate(report["known_hosts_files"]):
        last = i == len(report["known_hosts_files"]) - 1
        origin = "gpu-tray's own" if last else where(origins["known_hosts_files"])
        rows.append(("known_hosts" if i == 0 else "", path, origin))
    timeout = report["connect_timeout_s"]
    shown = f"{timeout:g} s"
    rows.append(("connect timeout", shown, where(origins["connect_timeout_s"])))
    title = report["name"]
    if not report["in_config_toml"]:
        title += f"  (not in config.toml: as {report['ssh_config']} says)"
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [title, *(f"  {a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip()
                      for a, b, c in rows)]  # fmt: skip
    return "\n".join(lines)
