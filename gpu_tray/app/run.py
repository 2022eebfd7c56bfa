"""Start the tray app: Qt application, single instance, logging to a file, signals,
the first-run note, and the event loop."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import platformdirs
from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication

from gpu_tray.app.config_loading import build_app_probes, load_app_config
from gpu_tray.app.tray_app import TrayApp
from gpu_tray.platform import autostart
from gpu_tray.platform.notify import Notification
from gpu_tray.ui.gc_guard import GuiThreadCollector

log = logging.getLogger(__name__)


def _setup_logging(verbose: bool) -> Path | None:
    """The tray runs without a terminal: INFO and up also go to a log file."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not verbose:
            handler.setLevel(logging.WARNING)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        folder = Path(platformdirs.user_log_dir("gpu-tray", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "gpu-tray.log"
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=2, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("no log file: %s", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)
    return path


def log_thread_deaths() -> None:
    """A library's thread that dies (jeepney's D-Bus reader when the session bus goes
    away at logout) says so in one log line, not a traceback on the terminal; the
    traceback goes to the log file only with --verbose."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        detail = (args.exc_type, args.exc_value, args.exc_traceback)
        log.warning(
            "thread %s stopped: %s: %s",
            name,
            args.exc_type.__name__,
            args.exc_value,
            exc_info=detail if log.isEnabledFor(logging.DEBUG) else None,
        )

    threading.excepthook = hook


def _quit_on_signals(app: QApplication, on_quit: Callable[[], None]) -> object:
    """SIGTERM/SIGINT end the event loop cleanly. The handler only wakes a socket the
    event loop watches, so nothing polls while idle."""
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    signal.set_wakeup_fd(wsock.fileno())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    notifier = QSocketNotifier(rsock.fileno(), QSocketNotifier.Type.Read, app)

    def woke() -> None:
        with contextlib.suppress(OSError):
            rsock.recv(64)
        on_quit()

    notifier.activated.connect(woke)
    return (rsock, wsock, notifier)


def run_app(args: argparse.Namespace, setup: Callable[[TrayApp], None] | None = None) -> int:
    """`gpu-tray` / `gpu-tray --demo`. `setup(app)` runs before the event loop: the place
    to add snapshot sinks and the history / settings handlers."""
    log_path = _setup_logging(getattr(args, "verbose", False))
    log_thread_deaths()
    qt = QApplication.instance() or QApplication(["gpu-tray"])
    qt.setApplicationName("gpu-tray")
    qt.setApplicationDisplayName("gpu-tray")
    qt.setDesktopFileName("gpu-tray")
    qt.setQuitOnLastWindowClosed(False)

    from gpu_tray.platform.single_instance import SingleInstance

    instance = SingleInstance()
    if not instance.acquire():
        shown = instance.ask_first_to_show()
        print(
            "gpu-tray is already running; asked it to show its window."
            if shown
            else "gpu-tray is already running (it did not answer).",
            file=sys.stderr,
        )
        return 0
    instance.listen()
    collector = GuiThreadCollector(parent=qt)

    loaded = load_app_config(getattr(args, "config", None), getattr(args, "demo", False))
    if loaded.error:
        print(f"gpu-tray: {loaded.notes[0]}", file=sys.stderr)
    probes, problem = build_app_probes(loaded)
    log.info(
        "gpu-tray starting: %s, %d probe(s), log %s",
        "demo" if loaded.config.demo else loaded.config.path,
        len(probes),
        log_path,
    )
    app = TrayApp(
        loaded,
        probes,
        notes=(problem,) if problem else (),
        autostart_enabled=autostart.is_enabled(),
    )
    instance.show_requested.connect(app.view.show_window)
    keep = _quit_on_signals(qt, app.quit)
    if setup is not None:
        setup(app)
    app.start()
    first_run = loaded.config.demo and not getattr(args, "demo", False) and not loaded.error
    if first_run and loaded.config.path is None:
        app.notifier.notify(Notification("gpu-tray is running", "\n".join(loaded.notes)))
    try:
        code = qt.exec()
    finally:
        app.stop(timeout=1.0)
        instance.release()
        collector.stop()
        del keep
    return int(code)
