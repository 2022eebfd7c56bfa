"""`gpu-tray status [--json]`: poll every host once and print what is free."""

from __future__ import annotations

import argparse
import json

from gpu_tray.cli.common import EXIT_HOSTS_FAILING, EXIT_OK, Usage, add_common_options, load_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="poll every host once and print what is free")
    add_common_options(status)
    status.add_argument("--json", action="store_true", help="print the JSON document")
    status.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="give up on a host after S seconds (default 30)",
    )


def run(args: argparse.Namespace) -> int:
    from gpu_tray.core.join import join_snapshots
    from gpu_tray.core.report import status_document, status_table
    from gpu_tray.credentials.keyring_store import default_store
    from gpu_tray.sources.factory import build_probes
    from gpu_tray.sources.poller import poll_once
    from gpu_tray.store.holder_views import status_extras
    from gpu_tray.store.paths import history_path

    config = load_for(args)
    probes = build_probes(config, default_store())
    if not probes:
        raise Usage(f"{config.path}: no [[hosts]] or [[sources]] to poll")
    try:
        snaps = join_snapshots(poll_once(probes, timeout_s=args.timeout))
    finally:
        for p in probes:
            p.close()
    # Read-only: status never creates, upgrades or locks the history the tray writes.
    idle, usual = status_extras(
        history_path(config.demo), snaps, config.idle, config.thresholds_for
    )
    if args.json:
        print(json.dumps(status_document(snaps, config, idle, usual), indent=1))
    else:
        print(status_table(snaps, config, idle, usual))
    return EXIT_OK if all(s.ok for s in snaps) else EXIT_HOSTS_FAILING
