"""The tray wired to its windows (as `gpu-tray` runs it): settings, history, host keys,
the keyring's state and the first run. Offscreen; no network."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from gpu_tray.app.wiring import wire
from gpu_tray.core.models import GpuSample, HostKeyInfo, HostSnapshot, HostState
from gpu_tray.credentials.keyring_store import KeyringState, KeyringStatus
from tests.ui.app_harness import open_menu

CONFIG = 'poll_interval_s = 5\n\n[[hosts]]\nname = "node3"\n'


@pytest.fixture
def wired(make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GPU_TRAY_HISTORY", str(tmp_path / "history.sqlite3"))
    made = []

    def build(config_text: str | None = CONFIG, demo: bool = False):
        app, _ = make_app(config_text, demo=demo)
        config = (
            str(tmp_path / "config.toml")
            if config_text is not None
            else str(tmp_path / "none.toml")
        )
        wiring = wire(app, argparse.Namespace(config=config, demo=demo))
        made.append(wiring)
        return app, wiring

    yield build
    for w in made:
        w.stop()
    for widget in QApplication.topLevelWidgets():
        widget.close()


def entry(app, name: str):
    return next(a for a in open_menu(app).actions() if a.objectName() == name)


def test_settings_and_history_are_enabled_and_open(wired, qtbot) -> None:
    app, wiring = wired()
    assert entry(app, "settings").isEnabled() and entry(app, "history").isEnabled()
    entry(app, "settings").trigger()
    assert wiring.settings is not None and wiring.settings.isVisible()
    assert wiring.settings.host_names() == ["node3"]
    entry(app, "history").trigger()
    qtbot.waitUntil(lambda: wiring.history.window is not None, timeout=10000)


def test_snapshots_reach_the_history_writer(wired, qtbot, tmp_path: Path) -> None:
    import sqlite3

    app, wiring = wired()
    snap = HostSnapshot(
        "node3", HostState.OK, gpus=(GpuSample(0, "GPU-0", "NVIDIA A100", 81920, 3, 0),)
    )
    app.snapshot_arrived.emit(snap)
    wiring.history.writer.stop()  # writes what is queued

    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        hosts = {row[0] for row in db.execute("SELECT name FROM hosts")}
    assert hosts == {"node3"}


def test_an_unknown_host_key_opens_the_trust_dialog(wired, qtbot) -> None:
    app, wiring = wired()
    key = HostKeyInfo("[10.0.0.3]:2222", "ssh-ed25519", "SHA256:abcdef", "AAAA")
    app.snapshot_arrived.emit(
        HostSnapshot("node3", HostState.HOST_KEY_UNKNOWN, "Unknown host key", host_key=key)
    )
    qtbot.waitUntil(lambda: "node3" in wiring.trust_dialogs)
    dialog = wiring.trust_dialogs["node3"]
    assert dialog.isVisible() and dialog.info == key


def test_the_keyring_state_is_a_menu_note(wired, qtbot) -> None:
    app, wiring = wired()
    message = "No system keyring found: passwords will be kept for this session only"
    wiring._keyring_status.emit(KeyringStatus(KeyringState.NONE, "fail Keyring", message))
    qtbot.waitUntil(lambda: message in app.state().notes)
    wiring._keyring_status.emit(KeyringStatus(KeyringState.OK, "SecretService Keyring", None))
    qtbot.waitUntil(lambda: message not in app.state().notes)


def test_first_run_offers_the_wizard(wired, qtbot) -> None:
    app, wiring = wired(config_text=None)
    assert app.config.demo
    assert wiring.first_run is not None and wiring.first_run.isVisible()


def test_explicit_demo_skips_the_wizard(wired) -> None:
    _app, wiring = wired(config_text=None, demo=True)
    assert wiring.first_run is None
