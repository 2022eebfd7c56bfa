"""`gpu-tray`: parse the command line and hand it to the module of its subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gpu_tray import __version__
from gpu_tray.cli.common import EXIT_USAGE, Usage, add_common_options

#: Each lives in `gpu_tray/cli/NAME.py`, exposing add_parser(subparsers) and run(args) -> int.
#: Adding a command is adding a module and its name here.
COMMANDS: tuple[str, ...] = (
    "status",
    "wait",
    "history",
    "hosts",
    "password",
    "trust",
    "channel",
    "watch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-tray",
        description="Is a GPU free on our servers? A tray icon that tells you the moment one is.",
    )
    parser.add_argument("--version", action="version", version=f"gpu-tray {__version__}")
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gpu_tray.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # paramiko logs every failed connect at ERROR with a traceback; the host state says it better.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    module = f"gpu_tray.cli.{args.command}" if args.command in COMMANDS else "gpu_tray.cli.tray"
    try:
        return int(importlib.import_module(module).run(args))
    except Usage as exc:
        print(f"gpu-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
