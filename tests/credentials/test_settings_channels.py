"""The settings dialog's Channels page (pytest-qt, offscreen): the URL field hides what
is typed; add stores the URL in the keyring store and only the name in config.toml;
test sends a real Apprise post to a real HTTP endpoint on loopback; remove forgets
both. The keyring is a dict backend here (the real one: tests/channels)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from gpu_tray.core.config import load_config
from gpu_tray.credentials.keyring_store import SecretStore
from gpu_tray.ui.settings.dialog import SettingsDialog
from tests.credentials.test_secret_store import DictBackend
from tests.harness.endpoints import http_endpoint

TOKEN = "d1aLog-S3cret-hook"
ORIGINAL = """\
# lab
poll_interval_s = 10

[[channels]]
name = "phone"

[[watch]]
event = "host_down"
channels = ["phone"]
"""


@pytest.fixture
def setup(qtbot, tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(ORIGINAL)
    backend = DictBackend()
    backend.items[("gpu-tray", "channel:phone")] = "ntfy://127.0.0.1:9/phone-topic"
    d = SettingsDialog(load_config(path), path, SecretStore(backend))
    qtbot.addWidget(d)
    d.show()
    d.tabs.setCurrentWidget(d.channels_page)
    page = d.channels_page
    qtbot.waitUntil(lambda: page.list.item(0).text() == "phone  (URL in the keyring)")
    return d, page, path, backend


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_the_page_lists_channels_and_hides_the_url(setup) -> None:
    d, page, _path, _backend = setup
    assert [d.tabs.tabText(i) for i in range(d.tabs.count())] == [
        "Hosts",
        "Polling && notifications",
        "Channels",
    ]
    assert page.url.echoMode() is QLineEdit.EchoMode.Password
    assert page.names() == ["phone"]


def test_add_test_and_remove_a_channel(qtbot, setup) -> None:
    d, page, path, backend = setup
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"
        page.name.setText("lab-hook")
        qtbot.keyClicks(page.url, url)
        with qtbot.waitSignal(d.channelsChanged, timeout=10_000) as changed:
            click(qtbot, page.add_button)
        assert page.url.text() == ""  # no copy kept
        assert backend.items[("gpu-tray", "channel:lab-hook")] == url
        assert [c.name for c in changed.args[0].channels] == ["phone", "lab-hook"]
        assert path.read_text() == ORIGINAL.replace(
            '"phone"\n\n', '"phone"\n\n[[channels]]\nname = "lab-hook"\n\n', 1
        )
        assert page.status.text() == "Saved the URL of lab-hook in the system keyring."
        assert page.list.item(1).text() == "lab-hook  (URL in the keyring)"

        page.list.setCurrentRow(1)
        click(qtbot, page.test_button)
        qtbot.waitUntil(
            lambda: page.status.text() == "Delivered a test message to lab-hook.", timeout=10_000
        )
        [post] = hook.posts
        assert post.json["title"] == "gpu-tray test"

        hook.status = 500
        click(qtbot, page.test_button)
        qtbot.waitUntil(lambda: page.status.text().startswith("Not delivered"), timeout=10_000)
        assert page.status.text() == (
            "Not delivered to lab-hook: Failed to send JSON POST notification: Internal server "
            "error., error=500."
        )
    page.list.setCurrentRow(0)
    with qtbot.waitSignal(d.channelsChanged, timeout=10_000) as changed:
        click(qtbot, page.remove_button)
    assert page.status.text() == (
        "Removed phone and forgot its URL. 1 watch rule that sent only to it went too."
    )
    assert changed.args[0].watch == ()
    assert ("gpu-tray", "channel:phone") not in backend.items
    assert path.read_text() == '# lab\npoll_interval_s = 10\n\n[[channels]]\nname = "lab-hook"\n'
    assert page.names() == ["lab-hook"]
    assert TOKEN not in path.read_text()


def test_bad_input_says_why_and_saves_nothing(qtbot, setup) -> None:
    _d, page, path, backend = setup
    page.name.setText("desktop")
    qtbot.keyClicks(page.url, "json://x/y")
    click(qtbot, page.add_button)
    assert page.status.text() == '"desktop" is the desktop\'s own channel: pick another name'
    page.name.setText("lab")
    page.url.clear()
    click(qtbot, page.add_button)
    assert page.status.text() == "Paste the Apprise URL for lab first."
    qtbot.keyClicks(page.url, f"nosuch://{TOKEN}")
    click(qtbot, page.add_button)
    qtbot.waitUntil(lambda: page.status.text().startswith("Apprise"), timeout=10_000)
    assert page.status.text() == (
        "Apprise does not understand this URL: check its scheme and fields "
        "(https://github.com/caronc/apprise/wiki lists them). Nothing was saved."
    )
    assert path.read_text() == ORIGINAL
    assert ("gpu-tray", "channel:lab") not in backend.items
