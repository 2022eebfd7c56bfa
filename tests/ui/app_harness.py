"""Building a TrayApp for offscreen tests: a recording notifier, menus opened by hand."""

from __future__ import annotations

from pathlib import Path

from gpu_tray.app.config_loading import load_app_config
from gpu_tray.app.tray_app import TrayApp
from gpu_tray.platform.notify import Notification

CONFIG = """# my cluster
poll_interval_s = 1   # fast, for the test

[notify]
confirm_polls = 2

[[hosts]]
name = "node3"        # the big one
"""


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, note: Notification) -> None:
        self.sent.append(note)

    def close(self) -> None:
        pass


def make_app_fixture(qapp, tmp_path: Path):
    apps: list[TrayApp] = []

    def make(
        config_text: str | None = CONFIG, probes=(), demo: bool = False, channel_urls=None
    ) -> tuple[TrayApp, Recording]:
        path = tmp_path / "config.toml"
        if config_text is not None:
            path.write_text(config_text)
        loaded = load_app_config(
            str(path) if config_text is not None else str(tmp_path / "none.toml"), demo
        )
        rec = Recording()
        app = TrayApp(
            loaded,
            list(probes),
            notifier_chain=[("recording", lambda: rec)],
            autostart_enabled=False,
            channel_urls=channel_urls,
        )
        apps.append(app)
        app.start()
        return app, rec

    yield make
    for app in apps:
        app.stop()


def open_menu(app: TrayApp):
    app.view.menu.menu.aboutToShow.emit()
    return app.view.menu.menu


def open_submenu(app: TrayApp, prefix: str):
    [action] = [a for a in open_menu(app).actions() if a.menu() and a.text().startswith(prefix)]
    action.menu().aboutToShow.emit()
    return action.menu()


def settle(app: TrayApp) -> None:
    """Everything emitted so far has gone through the rules and the notifier."""
    app.flush_notifications()
    assert app.notifier.drain(5)
