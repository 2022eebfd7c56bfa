"""What every subcommand shares: the common options, the config it runs on, and
the one exception that means "exit 2 with this message"."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from gpu_tray.core.config import ConfigError, load_config, resolve_config_path
from gpu_tray.core.settings import Config

EXIT_OK, EXIT_HOSTS_FAILING, EXIT_USAGE = 0, 1, 2


class Usage(Exception):
    """A usage or configuration problem: exit status 2 with this message."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $GPU_TRAY_CONFIG or the user config dir)",
    )
    parser.add_argument("--demo", action="store_true", help="use the built-in simulated cluster")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


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


def config_path_of(args: argparse.Namespace) -> Path:
    return resolve_config_path(getattr(args, "config", None))


def no_display() -> bool:
    """Linux without a desktop session: Qt would abort with a core dump, not a message."""
    if not sys.platform.startswith("linux"):
        return False
    return not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
