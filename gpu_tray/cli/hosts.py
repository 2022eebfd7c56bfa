"""`gpu-tray hosts list|add|remove|show`: edit the [[hosts]] of config.toml from a terminal,
and show what gpu-tray will connect to for one (`show`, in hosts_show.py).

Changes go through `config_edit`, like the settings dialog's: validated before
anything is written, written atomically, comments kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gpu_tray.cli.common import Usage, config_path_of, load_for
from gpu_tray.cli.hosts_show import add_show_parser, run_show
from gpu_tray.core.settings import Config, FreeThresholds, HostConfig


def add_options(parser: argparse.ArgumentParser) -> None:
    """--config and -v on a subcommand, without clobbering `gpu-tray --config X sub`
    (a subparser's own default would overwrite the value parsed before it)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $GPU_TRAY_CONFIG or the user config dir)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hosts", help="list, add, remove or show hosts in config.toml")
    add_options(p)
    hosts = p.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    ls = hosts.add_parser("list", help="the hosts in config.toml")
    add_options(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    add = hosts.add_parser("add", help="add a host (an alias from ~/.ssh/config is enough)")
    add_options(add)
    add.add_argument("name", metavar="NAME", help="a name, or an alias from ~/.ssh/config")
    add.add_argument("--hostname", help="the address, when NAME is not one")
    add.add_argument("--port", type=int, metavar="N")
    add.add_argument("--user")
    add.add_argument("--identity-file", metavar="PATH", dest="identity_file")
    add.add_argument("--proxy-jump", metavar="HOSTS", dest="proxy_jump", help="a,b,...")
    add.add_argument("--auth", choices=("agent", "key", "password"))
    add.add_argument(
        "--max-memory-mib", type=int, metavar="MIB", help="free: at most MIB used (this host)"
    )
    add.add_argument(
        "--max-utilization-pct", type=int, metavar="PCT", help="free: at most PCT %% busy"
    )
    rm = hosts.add_parser("remove", help="remove a host (and the watch rules naming it)")
    add_options(rm)
    rm.add_argument("name", metavar="NAME")
    add_show_parser(hosts, add_options)


_OPTION = {
    "name": "NAME",
    "hostname": "--hostname",
    "port": "--port",
    "user": "--user",
    "identity_file": "--identity-file",
    "proxy_jump": "--proxy-jump",
    "auth": "--auth",
    "free.max_memory_mib": "--max-memory-mib",
    "free.max_utilization_pct": "--max-utilization-pct",
}


def config_path(args: argparse.Namespace) -> Path:

    return config_path_of(args)


def host_named(args: argparse.Namespace, name: str) -> HostConfig:
    """The [[hosts]] entry called `name`; a usage error naming the file otherwise."""

    config = load_for(args)
    for host in config.hosts:
        if host.name == name:
            return host
    raise Usage(_not_found(name, config))


def _not_found(name: str, config: Config) -> str:
    known = ", ".join(h.name for h in config.hosts)
    return f"no host named {name!r} in {config.path}" + (
        f" (hosts: {known})" if known else " (it has no hosts)"
    )


def run(args: argparse.Namespace) -> int:
    if args.hosts_command == "list":
        return _list(args)
    if args.hosts_command == "add":
        return _add(args)
    if args.hosts_command == "show":
        return run_show(args)
    return _remove(args)


def _list(args: argparse.Namespace) -> int:

    config = load_for(args)
    if args.json:
        print(json.dumps([_host_json(h) for h in config.hosts], indent=1))
        return 0
    if not config.hosts:
        print(f"No hosts in {config.path}. Add one with `gpu-tray hosts add NAME`.")
        return 0
    rows = [("NAME", "HOSTNAME", "PORT", "USER", "AUTH", "PROXYJUMP", "FREE")]
    for h in config.hosts:
        free = f"<={h.free.max_memory_mib} MiB, <={h.free.max_utilization_pct}%" if h.free else "-"
        rows.append(
            (
                h.name,
                h.hostname or "-",
                str(h.port) if h.port else "-",
                h.user or "-",
                h.auth or "-",
                h.proxy_jump or "-",
                free,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _host_json(h: HostConfig) -> dict[str, object]:
    return {
        "name": h.name,
        "hostname": h.hostname,
        "port": h.port,
        "user": h.user,
        "identity_file": h.identity_file,
        "proxy_jump": h.proxy_jump,
        "auth": h.auth,
        "free": None
        if h.free is None
        else {
            "max_memory_mib": h.free.max_memory_mib,
            "max_utilization_pct": h.free.max_utilization_pct,
        },
    }


def _add(args: argparse.Namespace) -> int:
    from gpu_tray.core.config import ConfigError, load_config
    from gpu_tray.core.config_edit import add_host, edit_config
    from gpu_tray.core.host_form import check_host

    path = config_path(args)
    if path.exists():
        try:
            existing = load_config(path)
        except ConfigError as exc:
            raise Usage(str(exc)) from None
        if any(h.name == args.name for h in existing.hosts):
            raise Usage(f"a host named {args.name!r} is already in {path}")
    free = None
    if args.max_memory_mib is not None or args.max_utilization_pct is not None:
        base = FreeThresholds()
        free = FreeThresholds(
            max_memory_mib=base.max_memory_mib
            if args.max_memory_mib is None
            else args.max_memory_mib,
            max_utilization_pct=base.max_utilization_pct
            if args.max_utilization_pct is None
            else args.max_utilization_pct,
        )
    host = HostConfig(
        name=args.name,
        hostname=args.hostname,
        port=args.port,
        user=args.user,
        identity_file=args.identity_file,
        proxy_jump=args.proxy_jump,
        auth=args.auth,
        free=free,
    )
    if problems := check_host(host):
        lines = [f"hosts add: {_OPTION.get(k, k)}: {v}" for k, v in problems.items()]
        raise Usage("\n".join(lines) + "\nNothing was written.")
    try:
        edit_config(path, lambda doc: add_host(doc, host))
    except ConfigError as exc:
        raise Usage(f"{exc}\nNothing was written.") from None
    print(f"Added {args.name} to {path}.")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from gpu_tray.core.config import ConfigError
    from gpu_tray.core.config_edit import edit_config, remove_host

    config = load_for(args)
    if not any(h.name == args.name for h in config.hosts):
        raise Usage(_not_found(args.name, config))
    rules = sum(1 for w in config.watch if w.host == args.name)
    assert config.path is not None
    try:
        edit_config(config.path, lambda doc: remove_host(doc, args.name))
    except ConfigError as exc:
        raise Usage(f"{exc}\nNothing was written.") from None
    also = f" and {rules} watch rule{'s' if rules != 1 else ''} naming it" if rules else ""
    print(f"Removed {args.name}{also} from {config.path}.")
    return 0
