"""The tray app: wiring.

    config.toml -> probes -> Poller (one worker thread per probe)
        -> queued Qt signal -> GUI thread: join per host, rules, summary, icon, tooltip,
           menu; `snapshot_shown` -> history writer (its own thread) and window
        -> firings of one poll merged -> Notifier (its own thread) -> D-Bus / balloon / log

The GUI thread never waits on the network, D-Bus or the disk: polling runs on
the poller's threads, notifications on the notifier's, and config, autostart
and reload file work on one I/O worker whose results come back by signals.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from gpu_tray.core.availability import summarize
from gpu_tray.core.config import ConfigError, load_config, resolve_config_path
from gpu_tray.core.config_edit import add_watch, edit_config, remove_watch
from gpu_tray.core.join import SCHEDULER_SOURCES, join_snapshots, short_name
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.rules import Firing, RuleEngine, notification_text, ssh_args
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.platform import autostart
from gpu_tray.platform.notify import (
    BackendFactory,
    CallbackBackend,
    LogBackend,
    Notification,
    Notifier,
)
from gpu_tray.poller import Poller
from gpu_tray.sources.base import Probe
from gpu_tray.ui.gc_guard import GuiThreadCollector
from gpu_tray.ui.menu import TrayState
from gpu_tray.ui.text import host_counts
from gpu_tray.ui.tray import TrayView

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
APP_ICON = RESOURCES / "gpu-tray.svg"
#: Rules that fire this close together (one poll round of many hosts) make one notification.
COALESCE_MS = 400
#: Snapshots arriving this close together cost one repaint of icon, tooltip and window.
VIEW_REFRESH_MS = 100
SNOOZE_ACTION_S = 3600
AGE_REFRESH_MS = 30_000
DEMO_NOTE = "Demo cluster (simulated GPUs)"


def _demo_note() -> str:
    from gpu_tray.sources.scripted import ENV_DEMO_SCRIPT

    if os.environ.get(ENV_DEMO_SCRIPT):
        return f"Scripted cluster (from ${ENV_DEMO_SCRIPT})"
    return DEMO_NOTE


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    #: Lines for the top of the menu: demo, first run, a config error.
    notes: tuple[str, ...] = ()
    #: Where watch toggles are saved; None: they last for this run only.
    watches_path: Path | None = None
    error: bool = False
    #: (--config, --demo) as given, so that "Reload configuration" reads the same way.
    origin: tuple[str | None, bool] = (None, False)


def load_app_config(cli_config: str | None, demo: bool) -> LoadedConfig:
    """What the tray runs on. Never raises: a bad file becomes a note and no hosts."""
    loaded = _load(cli_config, demo)
    return replace(loaded, origin=(cli_config, demo))


def _load(cli_config: str | None, demo: bool) -> LoadedConfig:
    path = resolve_config_path(cli_config)
    explicit = bool(cli_config or os.environ.get("GPU_TRAY_CONFIG"))
    if demo:
        if explicit and path.exists():
            try:
                config = load_config(path)
            except ConfigError as exc:
                return LoadedConfig(Config(demo=True, path=path), (str(exc),), None, error=True)
            return LoadedConfig(replace(config, demo=True), (_demo_note(),), path)
        return LoadedConfig(Config(demo=True), (_demo_note(),))
    if not path.exists():
        return LoadedConfig(
            Config(demo=True),
            (
                "First run: this is the demo cluster.",
                f"Add your hosts in Settings… (they are saved to {path}).",
            ),
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        return LoadedConfig(Config(path=path), (str(exc),), None, error=True)
    if not config.hosts and not config.sources:
        return LoadedConfig(
            replace(config, demo=True),
            (f"No [[hosts]] in {path} yet: showing the demo cluster.",),
        )
    return LoadedConfig(config, (), path)


def _secrets():
    from gpu_tray.cli import _secrets as cli_secrets

    return cli_secrets()


def build_app_probes(loaded: LoadedConfig) -> tuple[list[Probe], str | None]:
    """(probes, problem). A source that cannot be built is a note, not a crash."""
    if loaded.error:
        return [], None
    from gpu_tray.sources.factory import build_probes

    try:
        return list(build_probes(loaded.config, _secrets())), None
    except Exception as exc:
        log.exception("building the sources failed")
        return [], f"Cannot start polling: {type(exc).__name__}: {exc}"


class TrayApp(QObject):
    """The tray app's controller; implements `TrayActions` for the menu."""

    snapshot_arrived = Signal(object)
    #: The config after "Reload configuration" or a save from the settings (GUI thread).
    reloaded = Signal(object)
    #: What the user now sees for a host (joined with its Slurm view), after every poll.
    snapshot_shown = Signal(object)
    _polled = Signal(int, object)
    _gone = Signal(int, str, str)
    notification_action = Signal(object, str)
    balloon_requested = Signal(object)
    io_done = Signal(object)

    def __init__(
        self,
        loaded: LoadedConfig,
        probes: Sequence[Probe],
        *,
        notes: Sequence[str] = (),
        notifier_chain: Sequence[tuple[str, BackendFactory]] | None = None,
        clock: Callable[[], float] = time.time,
        autostart_enabled: bool | None = None,
    ) -> None:
        super().__init__()
        self.loaded = loaded
        self.config = loaded.config
        self._notes = tuple(loaded.notes) + tuple(notes)
        self._problem: str | None = None
        #: What the user sees: one snapshot per host, a Slurm node joined with its
        #: SSH or Prometheus twin. Insertion order is the menu's order.
        self.latest: dict[str, HostSnapshot] = {}
        # Every probe's latest, by (source, name), and by short name for joining.
        self._raw: dict[tuple[str, str], HostSnapshot] = {}
        self._by_short: dict[str, dict[tuple[str, str], None]] = {}
        self._joining = False  # set once a scheduler source reports: joins cost a lookup
        self._extra_notes: dict[str, str] = {}
        self._on_host_key: Callable[[HostSnapshot], None] | None = None
        self._host_keys_shown: dict[str, str] = {}  # host -> fingerprint already shown
        self._ssh_args = {h.name: ssh_args(h) for h in self.config.hosts}
        self.engine = RuleEngine(
            self.config.watch,
            self._thresholds_for,
            self.config.notify.confirm_polls,
            clock=clock,
            ssh_args_for=lambda host: self._ssh_args.get(host, [host]),
        )
        self._generation = 0
        self.poller = self._make_poller(probes)
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gpu-tray-io")
        self._autostart = autostart_enabled
        self.view = TrayView(self, window_icon=app_icon(), current_state=self.state)
        self.notifier = Notifier(
            notifier_chain if notifier_chain is not None else self.default_chain()
        )
        self._pending: list[Firing] = []
        self._flush = QTimer(self, singleShot=True, interval=COALESCE_MS)
        self._flush.timeout.connect(self._flush_notifications)
        self._repaint = QTimer(self, singleShot=True, interval=VIEW_REFRESH_MS)
        self._repaint.timeout.connect(self.refresh_view)
        # Failing hosts back off for minutes: keep "data N min old" honest meanwhile.
        self._ages = QTimer(self, interval=AGE_REFRESH_MS)
        self._ages.timeout.connect(self._refresh_if_stale)
        self.snapshot_arrived.connect(self._on_snapshot)
        self._polled.connect(self._on_polled)
        self._gone.connect(self._on_gone)
        self.notification_action.connect(self._on_action)
        self.balloon_requested.connect(self.view.show_message)
        self.io_done.connect(lambda done: done())
        self._stopped = False

    # -- wiring hooks for the lead: history store, history and settings windows -----------

    def set_history_handler(self, handler: Callable[[], None] | None) -> None:
        """Enables "History…" in the menu and "Open history" in notifications (GUI thread)."""
        self.view.set_history_handler(handler)

    def set_settings_handler(self, handler: Callable[[], None] | None) -> None:
        self.view.set_settings_handler(handler)

    def set_host_key_handler(self, handler: Callable[[HostSnapshot], None] | None) -> None:
        """`handler(snapshot)` for a host whose key is unknown or changed: called when
        such a snapshot first arrives, and from the host's "Review host key…" entry."""
        self._on_host_key = handler
        self.view.menu.on_host_key = self.review_host_key if handler else None

    def review_host_key(self, name: str) -> None:
        snap = self.latest.get(name)
        if snap is not None and snap.host_key is not None and self._on_host_key is not None:
            self._on_host_key(snap)

    def set_note(self, key: str, text: str | None) -> None:
        """A line for the top of the menu and the tooltip (e.g. "No system keyring…");
        None removes it."""
        if text:
            self._extra_notes[key] = text
        else:
            self._extra_notes.pop(key, None)
        self.refresh_view()

    # -- lifecycle ------------------------------------------------------------------------

    def default_chain(self) -> list[tuple[str, BackendFactory]]:
        from gpu_tray.platform.freedesktop import FreedesktopBackend

        icon = str(APP_ICON) if APP_ICON.exists() else ""
        return [
            (
                "freedesktop",
                lambda: FreedesktopBackend(self.notification_action.emit, app_icon=icon),
            ),
            (
                "tray balloon",
                lambda: CallbackBackend(
                    "tray balloon", self.balloon_requested.emit, lambda: self.view.tray_available
                ),
            ),
            ("log", LogBackend),
        ]

    def start(self) -> None:
        self.refresh_view()
        self.view.start()
        self.poller.start()
        self._ages.start()

    def stop(self, timeout: float = 1.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._ages.stop()
        self.view.stop()
        self.poller.stop(timeout=timeout)
        self.notifier.close(timeout)
        self._io.shutdown(wait=False, cancel_futures=True)

    # -- snapshots ------------------------------------------------------------------------

    def _thresholds_for(self, host: str):
        return self.config.thresholds_for(host)

    def _make_poller(self, probes: Sequence[Probe]) -> Poller:
        generation = self._generation
        return Poller(
            probes,
            self.config.poll_interval_s,
            lambda snap: self._from_worker(generation, snap),
            on_gone=lambda kind, name: self._gone.emit(generation, kind, name),
        )

    def _from_worker(self, generation: int, snap: HostSnapshot) -> None:
        """Poller callback, on a worker thread: over to the GUI thread."""
        if generation != self._generation or self._stopped:
            return  # a poller replaced by a reload, finishing its last poll
        self._polled.emit(generation, snap)

    def _on_polled(self, generation: int, snap: HostSnapshot) -> None:
        if generation == self._generation:
            self._on_snapshot(snap)

    def _take(self, snap: HostSnapshot) -> HostSnapshot | None:
        """Record `snap`; returns what the user now sees for its host (None when a
        scheduler view was folded into a twin of another name)."""
        key = (snap.source, snap.name)
        self._raw[key] = snap
        self._by_short.setdefault(short_name(snap.name), {})[key] = None
        self._joining = self._joining or snap.source in SCHEDULER_SOURCES
        if not self._joining:
            self.latest[snap.name] = snap
            return snap
        related = [self._raw[k] for k in self._by_short[short_name(snap.name)]]
        joined = join_snapshots(related)
        kept = {j.name for j in joined}
        for s in related:
            if s.name not in kept:
                self.latest.pop(s.name, None)
        for j in joined:
            self.latest[j.name] = j  # in place: the menu keeps its order
        return next((j for j in joined if j.name == snap.name), None)

    def _on_gone(self, generation: int, kind: str, name: str) -> None:
        if generation != self._generation:
            return
        key = (kind, name)
        self._raw.pop(key, None)
        self._by_short.get(short_name(name), {}).pop(key, None)
        if not any(n == name for _, n in self._raw):
            self.latest.pop(name, None)
            self.engine.forget_host(name)
        self.refresh_view()

    def _on_snapshot(self, snap: HostSnapshot) -> None:
        shown = self._take(snap)
        if log.isEnabledFor(logging.DEBUG):
            free, total = host_counts(snap, self._thresholds_for)
            log.debug("snapshot %s: %s, %d/%d free", snap.name, snap.state.value, free, total)
        if shown is not None and shown.host_key is not None and self._on_host_key is not None:
            previous = self._host_keys_shown.get(shown.name)
            if previous != shown.host_key.fingerprint:
                self._host_keys_shown[shown.name] = shown.host_key.fingerprint
                self._on_host_key(shown)
        # A Slurm view folded into its measured twin is seen when the twin polls:
        # observing both would count one round twice against confirm_polls.
        firings = self.engine.observe(shown) if shown is not None else []
        if shown is not None:
            self.snapshot_shown.emit(shown)

        if firings:
            for f in firings:
                log.info("rule fired: %s: %s", f.spec.key, "; ".join(f.lines))
            self._pending.extend(firings)
            if not self._flush.isActive():
                self._flush.start()
        if not self._repaint.isActive():
            self._repaint.start()

    def state(self) -> TrayState:
        snaps = tuple(self.latest.values())
        summary = summarize(
            snaps,
            self._thresholds_for,
            watched=self.engine.matches if self.engine.specs else None,
            paused=self.poller.paused,
        )
        notes = (
            self._notes
            + tuple(self._extra_notes.values())
            + ((self._problem,) if self._problem else ())
        )
        return TrayState(
            snapshots=snaps,
            summary=summary,
            thresholds_for=self._thresholds_for,
            rules=tuple(self.engine.status()),
            paused=self.poller.paused,
            autostart=self._autostart,
            title="gpu-tray (demo)" if self.config.demo else "gpu-tray",
            notes=notes,
            watches_saved=self.loaded.watches_path is not None,
            can_reload=self.loaded.error or self._problem is not None,
        )

    def refresh_view(self) -> None:
        self.view.update(self.state())

    def _refresh_if_stale(self) -> None:
        if any(s.stale for s in self.latest.values()):
            self.refresh_view()

    # -- notifications --------------------------------------------------------------------

    def notification_actions(self) -> tuple[tuple[str, str], ...]:
        actions = [("default", "Copy command"), ("copy", "Copy command")]
        if self.view.on_history is not None:
            actions.append(("history", "Open history"))
        actions.append(("snooze", "Snooze 1 h"))
        return tuple(actions)

    def flush_notifications(self) -> None:
        """Send what fired so far now, instead of at the end of the merge window."""
        self._flush.stop()
        self._flush_notifications()

    def _flush_notifications(self) -> None:
        firings, self._pending = self._pending, []
        if not firings:
            return
        summary, body = notification_text(firings)
        self.notifier.notify(
            Notification(
                summary,
                body,
                self.notification_actions(),
                sound=self.config.notify.sound,
                payload=tuple(firings),
            )
        )

    def _on_action(self, note: Notification, key: str) -> None:
        firings: tuple[Firing, ...] = note.payload or ()
        if key in ("default", "copy") and firings:
            self.copy_to_clipboard(firings[0].command)
        elif key == "history" and self.view.on_history is not None:
            self.view.on_history()
        elif key == "snooze":
            self.engine.snooze({f.key for f in firings}, SNOOZE_ACTION_S)
            log.info("snoozed %d rule(s) for 1 h", len({f.key for f in firings}))
            self.refresh_view()

    def copy_to_clipboard(self, text: str) -> None:
        clipboard = QGuiApplication.clipboard()
        clipboard.setText(text, QClipboard.Mode.Clipboard)
        if clipboard.supportsSelection():
            clipboard.setText(text, QClipboard.Mode.Selection)
        log.info("copied to the clipboard: %s", text)

    # -- TrayActions ----------------------------------------------------------------------

    def refresh_now(self) -> None:
        self.poller.refresh_now()

    def set_paused(self, paused: bool) -> None:
        self.poller.set_paused(paused)
        self.refresh_view()

    def snooze_all(self, seconds: float) -> None:
        self.engine.snooze([s.key for s in self.engine.specs], seconds)
        self.refresh_view()

    def unsnooze_all(self) -> None:
        self.engine.unsnooze()
        self.refresh_view()

    def add_watch(self, spec: WatchSpec) -> None:
        self._change_watches(lambda doc: add_watch(doc, spec), [*self.engine.specs, spec])

    def remove_watch(self, key: str) -> None:
        self._change_watches(
            lambda doc: remove_watch(doc, key), [s for s in self.engine.specs if s.key != key]
        )

    def _change_watches(self, change, in_memory: list[WatchSpec]) -> None:
        path = self.loaded.watches_path
        if path is None:
            self._apply_watches(tuple(dict((s.key, s) for s in in_memory).values()))
            return

        def work() -> None:
            try:
                saved = edit_config(path, change)
            except (ConfigError, OSError) as exc:
                message = f"Could not save the watch: {exc}"
                self.io_done.emit(lambda: self._watch_failed(message))
                return
            self.io_done.emit(lambda: self._watches_saved(saved))

        self._io.submit(work)

    def _watches_saved(self, saved: Config) -> None:
        self._problem = None
        self.config = replace(self.config, watch=saved.watch, notify=saved.notify)
        self.engine.confirm_polls = saved.notify.confirm_polls
        self._apply_watches(saved.watch)
        log.info("watches saved to %s: %d rule(s)", self.loaded.watches_path, len(saved.watch))

    def _watch_failed(self, message: str) -> None:
        log.warning("%s", message)
        self._problem = message
        self.refresh_view()

    def _apply_watches(self, specs: Sequence[WatchSpec]) -> None:
        self.config = replace(self.config, watch=tuple(specs))
        self.engine.set_specs(specs)
        self.refresh_view()

    @property
    def autostart_enabled(self) -> bool | None:
        """Whether the autostart entry exists (read once at start-up; None: unknown)."""
        return self._autostart

    def set_autostart(self, enabled: bool) -> None:

        def work() -> None:
            try:
                now = autostart.set_enabled(enabled)
            except OSError as exc:
                message = f"Could not change start at login: {exc}"
                self.io_done.emit(lambda: self._watch_failed(message))
                return
            self.io_done.emit(lambda: self._autostart_done(now))

        self._io.submit(work)

    def _autostart_done(self, enabled: bool) -> None:
        self._autostart = enabled
        log.info("start at login: %s (%s)", "on" if enabled else "off", autostart.entry_path())
        self.refresh_view()

    def reload_config(self) -> None:
        """Read config.toml again and restart polling with it (off the GUI thread).
        Also the hook for a settings dialog that saved the file."""
        cli_config, demo = self.loaded.origin

        def work() -> None:
            loaded = load_app_config(cli_config, demo)
            probes, problem = build_app_probes(loaded)
            self.io_done.emit(lambda: self._reloaded(loaded, probes, problem))

        self._io.submit(work)

    def _reloaded(self, loaded: LoadedConfig, probes: list[Probe], problem: str | None) -> None:
        old = self.poller
        self.loaded, self.config = loaded, loaded.config
        self._notes = loaded.notes + ((problem,) if problem else ())
        self._problem = None
        self._ssh_args = {h.name: ssh_args(h) for h in self.config.hosts}
        self.engine.set_specs(self.config.watch)
        self.engine.confirm_polls = self.config.notify.confirm_polls
        for name in self.latest:
            self.engine.forget_host(name)
        self.latest.clear()
        self._raw.clear()
        self._by_short.clear()
        self._joining = False
        self._host_keys_shown.clear()
        self._generation += 1
        self.poller = self._make_poller(probes)
        # The old workers may be stuck on a dead host: let them go in the background.
        threading.Thread(target=old.stop, args=(5.0,), name="poll:retire", daemon=True).start()
        self.poller.start()
        self.refresh_view()
        self.reloaded.emit(self.config)

    def quit(self) -> None:

        log.info("quit")
        self.stop(timeout=0.5)
        QApplication.quit()


def app_icon() -> QIcon:
    icon = QIcon(str(APP_ICON)) if APP_ICON.exists() else QIcon()
    if icon.isNull():
        from gpu_tray.core.availability import ClusterSummary
        from gpu_tray.ui.icon import paint_icon

        icon = paint_icon(ClusterSummary(1, 1, 1, 0, 0))
    return icon


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
