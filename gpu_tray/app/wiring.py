"""What the tray is connected to besides polling: the history store and window, the
keyring with its prompts, and the settings, host-key and first-run dialogs.

`wire(app, args)` runs once, on the GUI thread, before the event loop. Everything it
connects keeps the GUI thread free: the history writer and the keyring have their
own threads, and the dialogs do their file, keyring and network work in background
tasks. Windows are imported when first opened, so start-up does not pay for them.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDialog

from gpu_tray.app.tray_app import TrayApp
from gpu_tray.core.config import resolve_config_path
from gpu_tray.core.models import HostSnapshot
from gpu_tray.core.settings import Config
from gpu_tray.credentials.keyring_store import KeyringStatus, default_store
from gpu_tray.store import HistoryWriter, history_path

log = logging.getLogger(__name__)

#: When the tray first reads idle stretches and GPU-hours from history, and how often after.
EXTRAS_FIRST_MS = 3000
EXTRAS_EVERY_MS = 5 * 60 * 1000


class HistoryLink(QObject):
    """Every snapshot the user sees goes to the SQLite writer (a queue put) and, when
    the history window is open, to its live plots."""

    def __init__(self, app: TrayApp) -> None:
        super().__init__(app)
        self.app = app
        self.window = None
        self.demo = app.config.demo
        self.path = history_path(demo=self.demo)
        self.writer = self._start_writer()
        app.snapshot_shown.connect(self._on_snapshot)
        app.reloaded.connect(self._on_reloaded)
        app.set_history_handler(self.open)
        # Idle stretches from before this run, GPU-hours per user, "usually free by":
        # read from the file on a worker soon after start, then every few minutes.
        self._seeded = False
        self._extras = QTimer(self)
        self._extras.setInterval(EXTRAS_EVERY_MS)
        self._extras.timeout.connect(self.read_extras)
        self._extras.start()
        self._first = QTimer(self)
        self._first.setSingleShot(True)
        self._first.setInterval(EXTRAS_FIRST_MS)
        self._first.timeout.connect(self.read_extras)
        self._first.start()
        self._resolve_own_users()

    def read_extras(self) -> None:
        from gpu_tray.store.holder_views import tray_extras
        from gpu_tray.ui.tasks import run_in_background

        path, seed = self.path, not self._seeded
        self._seeded = True
        names = [h.name for h in self.app.config.hosts]
        names += [s.name for s in self.app.latest.values() if s.source != "slurm"]
        hosts = list(dict.fromkeys(names))
        now = time.time()
        settings = self.app.config.idle
        run_in_background(
            self,
            lambda: tray_extras(path, hosts, now, with_samples=seed, settings=settings),
            self._on_extras,
            name="history:extras",
        )

    def _on_extras(self, extras) -> None:
        self.app.controller.seed_history(
            extras.samples, extras.hours_day, extras.hours_week, extras.usually_free_by
        )
        self.app.refresh_view()

    def _resolve_own_users(self) -> None:
        """Who "you" are on each SSH host (as SSH resolves it: ~/.ssh/config, User), for
        `[idle] remind_after_min`. Off the GUI thread; only when reminders are on."""
        config = self.app.config
        if config.idle.remind_after_min is None or not config.hosts:
            return
        from gpu_tray.ui.tasks import run_in_background

        hosts = config.hosts

        def resolve_all() -> dict[str, str | None]:
            from gpu_tray.sources.ssh.target import TargetError, load_ssh_config, resolve

            try:
                ssh_config = load_ssh_config()
            except TargetError:
                return {}
            users: dict[str, str | None] = {}
            for h in hosts:
                try:
                    users[h.name] = resolve(h, ssh_config).user
                except TargetError:
                    users[h.name] = None
            return users

        run_in_background(
            self, resolve_all, self.app.controller.set_own_users, name="history:own-users"
        )

    def _thresholds_for(self, host: str):
        return self.app.config.thresholds_for(host)  # Config is immutable: safe to read

    def _start_writer(self) -> HistoryWriter:
        backfill = None
        if self.demo:
            from gpu_tray.store.demo_history import demo_history

            backfill = demo_history  # a week, on the writer's thread, first run only
        writer = HistoryWriter(self.path, self._thresholds_for, backfill=backfill)
        writer.start()
        return writer

    def _on_snapshot(self, snap: HostSnapshot) -> None:
        self.writer.submit(snap)
        if self.window is not None:
            self.window.append_snapshot(snap)

    def _on_reloaded(self, config: Config) -> None:
        self._seeded = False  # the controller started over: seed it again
        self._resolve_own_users()
        self._first.start()
        if config.demo == self.demo:
            return
        # From the demo to real hosts (or back): they keep separate files.
        old = self.writer
        self.demo = config.demo
        self.path = history_path(demo=self.demo)
        self.writer = self._start_writer()
        # stop() writes what is queued and joins: not on the GUI thread.
        threading.Thread(target=old.stop, name="history:retire", daemon=True).start()
        if self.window is not None:
            self.window.close()
            self.window = None

    def open(self) -> None:
        from gpu_tray.ui.history.window import open_history_window

        self.window = open_history_window(
            self.path, thresholds_for=self._thresholds_for, idle=self.app.config.idle
        )
        self.window.destroyed.connect(self._window_gone)

    def _window_gone(self, *_: object) -> None:
        self.window = None

    def stop(self) -> None:
        self._extras.stop()
        self._first.stop()
        self.writer.stop()


class Wiring(QObject):
    _keyring_status = Signal(object)

    def __init__(self, app: TrayApp, args: argparse.Namespace) -> None:
        super().__init__(app)
        self.app = app
        self.args = args
        self.history = HistoryLink(app)
        self.settings = None
        self.trust_dialogs: dict[str, QDialog] = {}
        self.first_run = None

        # The same store the SSH probes read (gpu_tray.credentials.keyring_store.default_store).
        self.store = default_store()
        self._keyring_status.connect(self._on_keyring_status)
        self._unsubscribe = self.store.on_status(self._keyring_status.emit)
        self.store.start_probe()  # on the store's thread; the answer comes back above

        from gpu_tray.ui.dialogs.secret_prompt import SecretPrompter

        self.prompter = SecretPrompter(self.store, parent=self)
        self.prompter.answered.connect(self._reconnect)

        app.set_settings_handler(self.open_settings)
        app.set_host_key_handler(self.show_host_key)
        QApplication.instance().aboutToQuit.connect(self.stop)

    def _reconnect(self, name: str) -> None:
        self.app.poller.reset(name)

    def _on_keyring_status(self, status: KeyringStatus) -> None:
        self.app.set_note("keyring", status.message)

    def config_path(self) -> Path:
        return self.app.loaded.watches_path or resolve_config_path(
            getattr(self.args, "config", None)
        )

    # -- windows ----------------------------------------------------------------------------

    def open_settings(self) -> None:
        if self.settings is not None:
            self.settings.show()
            self.settings.raise_()
            self.settings.activateWindow()
            return
        from gpu_tray.ui.settings.dialog import SettingsDialog

        config = self.app.config
        if config.demo:
            config = Config()  # the demo's hosts are not the user's to edit
        dialog = SettingsDialog(
            config,
            self.config_path(),
            self.store,
            start_at_login=self.app.autostart_enabled,
            set_start_at_login=self.app.set_autostart,
        )
        dialog.saved.connect(lambda _config: self.app.reload_config())
        dialog.channelsChanged.connect(lambda _config: self.app.reload_config())
        dialog.reconnectRequested.connect(self._reconnect)
        dialog.finished.connect(self._settings_closed)
        self.settings = dialog
        dialog.show()

    def _settings_closed(self, *_: object) -> None:
        if self.settings is not None:
            self.settings.deleteLater()
        self.settings = None

    def show_host_key(self, snap: HostSnapshot) -> None:
        if snap.host_key is None:
            return
        existing = self.trust_dialogs.get(snap.name)
        if existing is not None:
            existing.raise_()
            existing.activateWindow()
            return
        from gpu_tray.ui.dialogs.trust import TrustDialog

        log.info("asking about the host key of %s (%s)", snap.name, snap.host_key.fingerprint)
        dialog = TrustDialog(snap.name, snap.host_key, on_trusted=self._reconnect)

        self.trust_dialogs[snap.name] = dialog
        dialog.finished.connect(lambda *_: self._trust_closed(snap.name))
        dialog.show()

    def _trust_closed(self, name: str) -> None:
        dialog = self.trust_dialogs.pop(name, None)
        if dialog is not None:
            dialog.deleteLater()

    def show_first_run(self) -> None:
        from gpu_tray.ui.dialogs.first_run import FirstRunDialog

        dialog = FirstRunDialog(self.config_path())
        dialog.hostsAdded.connect(lambda _config: self.app.reload_config())
        self.first_run = dialog
        dialog.show()

    def stop(self) -> None:
        self._unsubscribe()
        self.prompter.close()
        self.history.stop()


def wire(app: TrayApp, args: argparse.Namespace) -> Wiring:
    wiring = Wiring(app, args)
    explicit_demo = getattr(args, "demo", False)
    if not explicit_demo and app.config.demo and app.loaded.watches_path is None:
        path = resolve_config_path(getattr(args, "config", None))
        if not path.exists():
            wiring.show_first_run()
    return wiring
