"""`gpu-tray watch`: the tray's poller, rules, channels and history, with no Qt and no
desktop. For a login node or a lab server that tells the whole lab.

    config.toml -> probes -> Poller (a thread per probe) -> queue -> this loop:
        TrayController (the same rules and host events as the tray) ->
        ChannelSender (a thread per channel, retries) and HistoryWriter (its thread)

It runs until SIGTERM or SIGINT, then stops polling, gives queued messages one last
try and flushes the history: exit 0. Its log (stderr, INFO) says what it sent and
where (the channel's name, never its URL). Rules that list "desktop" are logged
as such: there is no desktop here.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from gpu_tray.cli.common import Usage, add_common_options, load_for
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import Config

if TYPE_CHECKING:
    from gpu_tray.channels.sender import ChannelSender
    from gpu_tray.presenter.controller import TrayController
    from gpu_tray.store import HistoryWriter

log = logging.getLogger("gpu_tray.watch")

#: How long a stop waits for channels to get their last try, and for the history.
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class _Loaded:
    """What `TrayController` wants to know about the config (see its LoadedConfig)."""

    config: Config
    notes: tuple[str, ...] = ()
    watches_path: Path | None = None
    error: bool = False


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch",
        help="headless: poll, apply the watch rules, send to channels, keep history (no Qt)",
    )
    add_common_options(p)


def run(args: argparse.Namespace) -> int:
    from gpu_tray.channels.sender import ChannelSender
    from gpu_tray.channels.store import ChannelStore
    from gpu_tray.credentials.keyring_store import default_store
    from gpu_tray.presenter.controller import TrayController
    from gpu_tray.sources.factory import build_probes
    from gpu_tray.sources.poller import Poller
    from gpu_tray.store import HistoryWriter, history_path

    _log_to_stderr(args.verbose)
    config = load_for(args)
    secrets = default_store()
    probes = build_probes(config, secrets)
    if not probes:
        raise Usage(f"{config.path}: no [[hosts]] or [[sources]] to poll")
    controller = TrayController(_Loaded(config))
    if config.channels and (status := secrets.status()).message:
        # Channel URLs live in the keyring: say now, not at the first message, that they
        # cannot be read (a headless server without a Secret Service).
        log.warning("%s: channels will not be reachable", status.message)
    channels = ChannelStore(secrets)
    sender = ChannelSender(channels.url)
    writer = HistoryWriter(history_path(demo=config.demo), config.thresholds_for)
    inbox: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()
        inbox.put(None)  # wake the loop

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    poller = Poller(probes, config.poll_interval_s, inbox.put)
    writer.start()
    log.info(
        "watching %d source(s) every %g s with %d rule(s); channels: %s; history: %s",
        len(probes),
        config.poll_interval_s,
        len(config.watch),
        ", ".join(c.name for c in config.channels) or "none",
        writer.path,
    )
    poller.start()
    try:
        while not stop.is_set():
            snap = inbox.get()
            if not isinstance(snap, HostSnapshot):
                continue
            _observe(controller, snap, sender, writer)
    finally:
        poller.stop(timeout=2.0)
        sender.close(STOP_TIMEOUT_S)
        writer.stop(STOP_TIMEOUT_S)
        log.info("stopped: %d snapshot(s) written to the history", writer.written)
    return 0


def _observe(
    controller: TrayController, snap: HostSnapshot, sender: ChannelSender, writer: HistoryWriter
) -> None:
    previous = controller.latest.get(snap.name)
    seen = controller.observe(snap)
    if seen.shown is None:
        return
    shown = seen.shown
    log.debug("snapshot %s: %s", shown.name, shown.state.value)
    writer.submit(shown)
    if shown.state not in (HostState.OK, HostState.CONNECTING) and (
        previous is None or previous.state is not shown.state
    ):
        log.warning("%s: %s: %s", shown.name, shown.state.value, shown.message)
    for f in seen.firings:
        log.info("rule fired: %s: %s", f.spec.key, "; ".join(f.lines))
    for e in seen.events:
        log.info("host event: %s: %s", e.spec.key, e.body)
    if not seen.firings and not seen.events:
        return
    routed = controller.route(seen.firings, seen.events)
    if routed.desktop_firings:
        note = controller.notification(routed.desktop_firings, history=False)
        log.info('for the desktop (none here): "%s"', note.summary)
    for e in routed.desktop_events:
        log.info('for the desktop (none here): "%s"', e.summary)
    for name, message in routed.channels:
        log.info('sending "%s" to channel %s', message.title, name)
        sender.send(name, message)


def _log_to_stderr(verbose: bool) -> None:
    """INFO to stderr (journald keeps it under systemd); -v for DEBUG."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    # Keyring and store chatter stays at DEBUG unless asked for.
    if not verbose:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
