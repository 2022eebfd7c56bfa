"""`gpu-tray` with no subcommand: the tray app."""

from __future__ import annotations

import argparse

from gpu_tray.cli.common import Usage, no_display


def run(args: argparse.Namespace) -> int:
    if no_display():
        raise Usage(
            "the tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set). "
            "Without one, try `gpu-tray status` or `gpu-tray wait`."
        )
    from gpu_tray.app.run import run_app
    from gpu_tray.app.wiring import wire

    return run_app(args, setup=lambda app: wire(app, args))
