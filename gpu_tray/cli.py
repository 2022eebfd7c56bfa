"""Command line: `gpu-tray` (the tray app), `gpu-tray status`, and the subcommands."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from gpu_tray import __version__
from gpu_tray.core.config import ConfigError, load_config, resolve_config_path
from gpu_tray.core.settings import Config

EXIT_OK, EXIT_HOSTS_FAILING, EXIT_USAGE = 0, 1, 2

# Subcommands that live in their own modules: name -> module exposing
# add_parser(subparsers) and run(args) -> int.
PLUGIN_COMMANDS: tuple[str, ...] = ("wait", "history", "hosts", "password", "trust")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $GPU_TRAY_CONFIG or the user config dir)",
    )
    parser.add_argument("--demo", action="store_true", help="use the built-in simulated cluster")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-tray",
        description="Is a GPU free on our servers? A tray icon that tells you the moment one is.",
    )
    parser.add_argument("--version", action="version", version=f"gpu-tray {__version__}")
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = sub.add_parser("status", help="poll every host once and print what is free")
    _common(status)
    status.add_argument("--json", action="store_true", help="print the JSON document")
    status.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="give up on a host after S seconds (default 30)",
    )
    for name in PLUGIN_COMMANDS:
        importlib.import_module(f"gpu_tray.cli_{name}").add_parser(sub)
    return parser


class Usage(Exception):
    """A usage or configuration problem: exit status 2 with this message."""


def load_for(args: argparse.Namespace) -> Config:
    """The config the command runs on. `--demo` alone: the demo cluster with default
    settings; `--demo --config PATH`: the demo cluster with that file's settings
    (poll interval, thresholds, notify, watch rules)."""
    demo = getattr(args, "demo", False)
    if demo and not args.config:
        return Config(demo=True)
    path = resolve_config_path(args.config)
    if not path.exists():
        raise Usage(
            f"No configuration at {path}.\n"
            "Run `gpu-tray` to set one up, write one (see the README), "
            "or try the built-in demo cluster with --demo."
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise Usage(str(exc)) from None
    return replace(config, demo=True) if demo else config


def cmd_status(args: argparse.Namespace) -> int:
    from gpu_tray.core.join import join_snapshots
    from gpu_tray.core.report import status_document, status_table
    from gpu_tray.poller import poll_once
    from gpu_tray.sources.factory import build_probes

    config = load_for(args)
    probes = build_probes(config, _secrets())
    if not probes:
        raise Usage(f"{config.path}: no [[hosts]] or [[sources]] to poll")
    try:
        snaps = join_snapshots(poll_once(probes, timeout_s=args.timeout))
    finally:
        for p in probes:
            p.close()
    if args.json:
        print(json.dumps(status_document(snaps, config), indent=1))
    else:
        print(status_table(snaps, config))
    return EXIT_OK if all(s.ok for s in snaps) else EXIT_HOSTS_FAILING


def _secrets():  # -> SecretLookup
    try:
        from gpu_tray.secrets import default_store
    except ImportError:
        from gpu_tray.sources.base import NoSecrets

        return NoSecrets()
    return default_store()


def no_display() -> bool:
    """Linux without a desktop session: Qt would abort with a core dump, not a message."""
    if not sys.platform.startswith("linux"):
        return False
    return not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def cmd_tray(args: argparse.Namespace) -> int:
    if no_display():
        raise Usage(
            "the tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set). "
            "Without one, try `gpu-tray status` or `gpu-tray wait`."
        )
    from gpu_tray.app import run_app
    from gpu_tray.app_wiring import wire

    return run_app(args, setup=lambda app: wire(app, args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # paramiko logs every failed connect at ERROR with a traceback; the host state says it better.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    try:
        if args.command == "status":
            return cmd_status(args)
        if args.command in PLUGIN_COMMANDS:
            module = importlib.import_module(f"gpu_tray.cli_{args.command}")
            return int(module.run(args))
        return cmd_tray(args)
    except Usage as exc:
        print(f"gpu-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def config_path_of(args: argparse.Namespace) -> Path:
    return resolve_config_path(getattr(args, "config", None))


if __name__ == "__main__":
    sys.exit(main())
