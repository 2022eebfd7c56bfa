"""The tray app's Qt layer.

    config.toml -> probes -> Poller (one worker thread per probe)
        -> queued Qt signal -> GUI thread: TrayController (join per host, rules, state)
           -> icon, tooltip, menu; `snapshot_shown` -> history writer (its own thread)
        -> firings of one poll merged -> Notifier (its own thread) -> D-Bus / balloon / log
                                      -> ChannelSender (a thread per channel) -> Apprise

Everything decided lives in the Qt-free `TrayController`; this class owns the
threads, timers and widgets and moves the controller's results onto them.
The GUI thread never waits on the network, D-Bus or the disk: polling runs on
the poller's threads, notifications on the notifier's, and config, autostart
and reload file work on one I/O worker whose results come back by signals.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from gpu_tray.app.config_loading import LoadedConfig, build_app_probes, load_app_config
from gpu_tray.channels.routing import Routed
from gpu_tray.channels.sender import ChannelSender
from gpu_tray.core.config import ConfigError
from gpu_tray.core.config_edit import add_watch, edit_config, remove_watch
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.rules import Firing, RuleEngine
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.platform import autostart, resources
from gpu_tray.platform.chain import notification_chain
from gpu_tray.platform.notify import (
    BackendFactory,
    CallbackBackend,
    LogBackend,
    Notification,
    Notifier,
)
from gpu_tray.presenter.controller import TrayController
from gpu_tray.presenter.text import host_counts
from gpu_tray.presenter.tray_state import TrayState
from gpu_tray.sources.base import Probe
from gpu_tray.sources.poller import Poller
from gpu_tray.ui.tray.view import TrayView

log = logging.getLogger(__name__)

#: Rules that fire this close together (one poll round of many hosts) make one notification.
COALESCE_MS = 400
#: Snapshots arriving this close together cost one repaint of icon, tooltip and window.
VIEW_REFRESH_MS = 100
SNOOZE_ACTION_S = 3600
AGE_REFRESH_MS = 30_000


class TrayApp(QObject):
    """Implements `TrayActions` for the menu."""

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
    #: (channel name, a line for the menu or None): from a channel's thread to ours.
    channel_status = Signal(str, object)

    def __init__(
        self,
        loaded: LoadedConfig,
        probes: Sequence[Probe],
        *,
        notes: Sequence[str] = (),
        notifier_chain: Sequence[tuple[str, BackendFactory]] | None = None,
        clock: Callable[[], float] = time.time,
        autostart_enabled: bool | None = None,
        channel_urls: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.controller = TrayController(loaded, notes=notes, clock=clock)
        self._on_host_key: Callable[[HostSnapshot], None] | None = None
        self._generation = 0
        self.poller = self._make_poller(probes)
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gpu-tray-io")
        self._autostart = autostart_enabled
        self._icon_path = resources.icon_path()
        self.view = TrayView(self, window_icon=app_icon(self._icon_path), current_state=self.state)
        self.notifier = Notifier(
            notifier_chain if notifier_chain is not None else self.default_chain()
        )
        self._pending: list[Firing] = []
        # Made on the first message for a channel: most users have none. `channel_urls`
        # (tests) stands in for the keyring.
        self._channel_urls = channel_urls
        self._channels: ChannelSender | None = None
        self.channel_status.connect(self._on_channel_status)
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

    # The controller's state, under the names the wiring and tests use.
    @property
    def loaded(self) -> LoadedConfig:
        return self.controller.loaded  # type: ignore[return-value]

    @property
    def config(self) -> Config:
        return self.controller.config

    @property
    def latest(self) -> dict[str, HostSnapshot]:
        return self.controller.latest

    @property
    def engine(self) -> RuleEngine:
        return self.controller.engine

    # -- wiring hooks: history store, history and settings windows ------------------------

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
        self.controller.set_note(key, text)
        self.refresh_view()

    # -- lifecycle ------------------------------------------------------------------------

    def default_chain(self) -> list[tuple[str, BackendFactory]]:
        from gpu_tray.platform.freedesktop import FreedesktopBackend

        icon = self._icon_path
        return notification_chain(
            {
                "freedesktop": lambda: FreedesktopBackend(
                    self.notification_action.emit, app_icon=icon
                ),
                "tray balloon": lambda: CallbackBackend(
                    "tray balloon", self.balloon_requested.emit, self._balloon_available
                ),
                "log": LogBackend,
            }
        )

    def _balloon_available(self) -> bool:
        """On the notifier's thread. Not on a StatusNotifierItem host: there Qt's balloon
        would turn the icon into a light bulb (NeedsAttention) and lose the actions."""
        from gpu_tray.platform.status_notifier import host_registered

        return self.view.tray_available and not host_registered()

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
        if self._channels is not None:
            self._channels.close(timeout)
        self._io.shutdown(wait=False, cancel_futures=True)

    # -- snapshots ------------------------------------------------------------------------

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

    def _on_gone(self, generation: int, kind: str, name: str) -> None:
        if generation != self._generation:
            return
        self.controller.gone(kind, name)
        self.refresh_view()

    def _on_snapshot(self, snap: HostSnapshot) -> None:
        if log.isEnabledFor(logging.DEBUG):
            free, total = host_counts(snap, self.controller.thresholds_for)
            log.debug("snapshot %s: %s, %d/%d free", snap.name, snap.state.value, free, total)
        seen = self.controller.observe(snap)
        if seen.review_key is not None and self._on_host_key is not None:
            self._on_host_key(seen.review_key)
        if seen.shown is not None:
            self.snapshot_shown.emit(seen.shown)
        if seen.firings:
            for f in seen.firings:
                log.info("rule fired: %s: %s", f.spec.key, "; ".join(f.lines))
            self._pending.extend(seen.firings)
            if not self._flush.isActive():
                self._flush.start()
        if seen.events:
            for e in seen.events:
                log.info("host event: %s: %s", e.spec.key, e.body)
            self._dispatch(self.controller.route((), seen.events))
        if not self._repaint.isActive():
            self._repaint.start()

    def state(self) -> TrayState:
        return self.controller.state(paused=self.poller.paused, autostart=self._autostart)

    def refresh_view(self) -> None:
        self.view.update(self.state())

    def _refresh_if_stale(self) -> None:
        if self.controller.any_stale():
            self.refresh_view()

    # -- notifications --------------------------------------------------------------------

    def notification_actions(self) -> tuple[tuple[str, str], ...]:
        return self.controller.notification_actions(history=self.view.on_history is not None)

    def flush_notifications(self) -> None:
        """Send what fired so far now, instead of at the end of the merge window."""
        self._flush.stop()
        self._flush_notifications()

    def _flush_notifications(self) -> None:
        firings, self._pending = self._pending, []
        if firings:
            self._dispatch(self.controller.route(firings))

    def _dispatch(self, routed: Routed) -> None:
        """The desktop gets what its rules list it for; each channel its own message.
        Both only queue: the notifier and the channels have their own threads."""
        if routed.desktop_firings:
            history = self.view.on_history is not None
            self.notifier.notify(
                self.controller.notification(routed.desktop_firings, history=history)
            )
        for event in routed.desktop_events:
            self.notifier.notify(self.controller.event_notification(event))
        for name, message in routed.channels:
            log.info('sending "%s" to channel %s', message.title, name)
            self.channels.send(name, message)

    @property
    def channels(self) -> ChannelSender:
        if self._channels is None:
            urls = self._channel_urls
            if urls is None:
                from gpu_tray.channels.store import ChannelStore
                from gpu_tray.credentials.keyring_store import default_store

                urls = ChannelStore(default_store()).url
            self._channels = ChannelSender(urls, on_status=self.channel_status.emit)
        return self._channels

    def _on_channel_status(self, name: str, text: str | None) -> None:
        """A channel failing (or fine again): a line at the top of the menu."""
        self.set_note(f"channel:{name}", text)

    def _on_action(self, note: Notification, key: str) -> None:
        firings: tuple[Firing, ...] = note.payload or ()
        if key in ("default", "copy") and firings:
            self.copy_to_clipboard(firings[0].command)
        elif key == "history" and self.view.on_history is not None:
            self.view.on_history()
        elif key == "snooze":
            count = self.controller.snooze((f.key for f in firings), SNOOZE_ACTION_S)
            log.info("snoozed %d rule(s) for 1 h", count)
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
        if self._channels is not None:
            self._channels.retry_now()

    def set_paused(self, paused: bool) -> None:
        self.poller.set_paused(paused)
        self.refresh_view()

    def snooze_all(self, seconds: float) -> None:
        self.controller.snooze_all(seconds)
        self.refresh_view()

    def unsnooze_all(self) -> None:
        self.engine.unsnooze()
        self.refresh_view()

    def add_watch(self, spec: WatchSpec) -> None:
        # config.watch, not engine.specs: host_down rules live in the controller's
        # HostEventEngine and must survive a toggle too.
        self._change_watches(lambda doc: add_watch(doc, spec), [*self.config.watch, spec])

    def remove_watch(self, key: str) -> None:
        self._change_watches(
            lambda doc: remove_watch(doc, key), [s for s in self.config.watch if s.key != key]
        )

    def _change_watches(self, change, in_memory: list[WatchSpec]) -> None:
        path = self.loaded.watches_path
        if path is None:
            self.controller.apply_watches(tuple(dict((s.key, s) for s in in_memory).values()))
            self.refresh_view()
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
        self.controller.watches_saved(saved)
        self.refresh_view()
        log.info("watches saved to %s: %d rule(s)", self.loaded.watches_path, len(saved.watch))

    def _watch_failed(self, message: str) -> None:
        log.warning("%s", message)
        self.controller.problem = message
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
        log.info("start at login: %s (%s)", "on" if enabled else "off", autostart.location())
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
        self.controller.reset(loaded, problem)
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


def app_icon(path: str) -> QIcon:
    """The shipped icon at `path` (platform/resources.py finds it), else a painted one."""
    icon = QIcon(path) if path else QIcon()
    if not icon.isNull() and not icon.pixmap(32, 32).isNull():
        log.info("app icon loaded: %s", path)
    else:
        if path:
            log.warning("could not load the app icon %s; drawing one instead", path)
        from gpu_tray.core.availability import ClusterSummary
        from gpu_tray.ui.tray.icon import paint_icon

        icon = paint_icon(ClusterSummary(1, 1, 1, 0, 0))
    return icon
