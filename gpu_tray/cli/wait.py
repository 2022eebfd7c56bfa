"""`gpu-tray wait`: block until a watch rule holds, print where, exit 0 (3 on timeout).

For scripts: `gpu-tray wait --count 2 --model A100 && ./train.sh`. It uses the
same hysteresis as the tray, so a GPU that is free for one poll does not end
the wait.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from dataclasses import replace

from gpu_tray.cli.common import Usage, add_common_options, load_for
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.credentials.keyring_store import default_store

EXIT_TIMEOUT = 3


def add_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("wait", help="block until GPUs are free (for scripts), then print where")
    add_common_options(p)
    p.add_argument("--host", help="only this host (default: any)")
    p.add_argument("--gpu", type=int, metavar="INDEX", help="only this GPU index (needs --host)")
    p.add_argument("--count", type=int, default=1, metavar="N", help="free GPUs needed (default 1)")
    p.add_argument("--model", metavar="TEXT", help="model name must contain TEXT (e.g. A100)")
    p.add_argument(
        "--min-free-memory",
        type=int,
        metavar="MIB",
        dest="min_free_memory",
        help="each GPU needs at least MIB free",
    )
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (exit 3)")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a line")


def _say_expected(
    snap: HostSnapshot, spec: WatchSpec, config: Config, said: dict[str, str]
) -> None:
    """While waiting, say when a scheduler expects the GPUs in scope to free (on stderr,
    once per change): "gpu-tray: node1: 4 GPUs expected free at ~14:35"."""
    from gpu_tray.core.prediction import expected_groups, expected_text

    if spec.host is not None and snap.name != spec.host:
        return
    if spec.gpu is not None:
        snap = replace(snap, gpus=tuple(g for g in snap.gpus if g.index == spec.gpu))
    if spec.model:
        wanted = spec.model.casefold()
        snap = replace(snap, gpus=tuple(g for g in snap.gpus if wanted in g.name.casefold()))
    groups = expected_groups(snap, config.thresholds_for(snap.name)) if snap.ok else []
    text = expected_text(groups)
    if text and said.get(snap.name) != text:
        print(
            f"gpu-tray: {snap.name}: {text.replace(' at ~', ' expected free at ~', 1)}",
            file=sys.stderr,
        )
    said[snap.name] = text


def run(args: argparse.Namespace) -> int:
    from gpu_tray.core.rules import RuleEngine
    from gpu_tray.sources.factory import build_probes
    from gpu_tray.sources.poller import Poller

    if args.gpu is not None and args.host is None:
        raise Usage("--gpu needs --host")
    if args.count < 1:
        raise Usage("--count must be at least 1")
    config = load_for(args)
    spec = WatchSpec(
        host=args.host,
        gpu=args.gpu,
        count=args.count,
        model=args.model,
        min_free_memory_mib=args.min_free_memory,
    )
    engine = RuleEngine([spec], config.thresholds_for, config.notify.confirm_polls)
    inbox: queue.Queue[HostSnapshot] = queue.Queue()
    probes = build_probes(config, default_store())
    if not probes:
        raise Usage(f"{config.path}: no [[hosts]] or [[sources]] to poll")
    poller = Poller(probes, config.poll_interval_s, inbox.put)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    last_state: dict[str, HostState] = {}
    last_expected: dict[str, str] = {}
    poller.start()
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                print(f"gpu-tray: nothing matched within {args.timeout:g} s", file=sys.stderr)
                return EXIT_TIMEOUT
            try:
                snap = inbox.get(timeout=left)
            except queue.Empty:
                continue
            if snap.state not in (HostState.OK, HostState.CONNECTING) and (
                last_state.get(snap.name) != snap.state
            ):
                print(f"gpu-tray: {snap.name}: {snap.state.value}: {snap.message}", file=sys.stderr)
            last_state[snap.name] = snap.state
            _say_expected(snap, spec, config, last_expected)
            firings = engine.observe(snap)
            if firings:
                f = firings[0]
                ids = ",".join(u.cuda_id for u in f.units)
                if args.json:
                    print(
                        json.dumps(
                            {
                                "host": f.host,
                                "gpus": [u.gpu_index for u in f.units],
                                "units": [
                                    {
                                        "gpu": u.gpu_index,
                                        "mig": u.mig_index,
                                        "model": u.model,
                                        "cuda_visible_devices": u.cuda_id,
                                    }
                                    for u in f.units
                                ],
                                "cuda_visible_devices": ids,
                                "command": f.command,
                            }
                        )
                    )
                else:
                    print(f"{f.host} {ids}")
                return 0
    finally:
        poller.stop(timeout=1.0)
