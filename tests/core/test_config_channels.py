"""config.toml's [[channels]] and the new [[watch]] keys: channels, event, down_after_s.
Every error names the file, the key and the line; nothing secret is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.config_edit import add_channel, edit_config, remove_channel
from gpu_tray.core.settings import ChannelConfig, WatchSpec

P = Path("/cfg/config.toml")

GOOD = """\
[[channels]]
name = "lab-slack"

[[channels]]
name = "phone"

[[watch]]
host = "node3"
gpu = 1
channels = ["desktop", "phone"]

[[watch]]
event = "host_down"
channels = ["lab-slack"]

[[watch]]
event = "host_down"
host = "node7"
down_after_s = 300

[[watch]]
count = 2
"""


def test_channels_and_rules_parse() -> None:
    c = parse_config(GOOD, P)
    assert c.channels == (ChannelConfig("lab-slack"), ChannelConfig("phone"))
    assert c.watch == (
        WatchSpec(host="node3", gpu=1, channels=("desktop", "phone")),
        WatchSpec(event="host_down", channels=("lab-slack",)),
        WatchSpec(host="node7", event="host_down", down_after_s=300.0),
        WatchSpec(count=2),
    )
    assert [w.to_desktop for w in c.watch] == [True, False, True, True]
    assert [w.named_channels for w in c.watch] == [("phone",), ("lab-slack",), (), ()]
    # Keys of rules without channels or events are what they were before.
    assert c.watch[3].key == "host=*;gpu=*;count=2;model=*;mem=0"
    assert c.watch[0].key == "host=node3;gpu=1;count=1;model=*;mem=0;channels=desktop,phone"
    assert c.watch[2].key == "event=host_down;host=node7;after=300"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[watch]]\nhost = "a"\nchannels = ["desktop", "slack"]\n',
            "/cfg/config.toml, line 3: watch[0].channels: unknown channel 'slack' (known: "
            "desktop; add one with `gpu-tray channel add NAME`)",
        ),
        (
            '[[channels]]\nname = "phone"\n\n[[watch]]\nchannels = ["phone", "slak"]\n',
            "/cfg/config.toml, line 5: watch[0].channels: unknown channel 'slak' (known: "
            "desktop, phone; add one with `gpu-tray channel add NAME`)",
        ),
        (
            "[[watch]]\nchannels = []\n",
            '/cfg/config.toml, line 2: watch[0].channels: must be a list of channel names like '
            '["desktop", "lab-slack"], got list',
        ),
        (
            '[[watch]]\nchannels = "desktop"\n',
            '/cfg/config.toml, line 2: watch[0].channels: must be a list of channel names like '
            '["desktop", "lab-slack"], got "desktop"',
        ),
        (
            '[[channels]]\nname = "slack"\nurl = "https://hooks.slack.com/services/T/B/X"\n',
            "/cfg/config.toml, line 3: channels[0].url: a channel's URL is a secret and never "
            "goes in config.toml; store it in the system keyring with `gpu-tray channel add "
            "NAME` or the Settings dialog",
        ),
        (
            '[[channels]]\nname = "slack"\nwebhook_token = "x"\n',
            "/cfg/config.toml, line 3: channels[0].webhook_token: secrets never go in "
            "config.toml; store it in the system keyring with `gpu-tray password set HOST` or "
            "the Settings dialog",
        ),
        (
            '[[channels]]\nname = "desktop"\n',
            '/cfg/config.toml, line 2: channels[0].name: "desktop" is the desktop\'s own '
            "channel: pick another name",
        ),
        (
            '[[channels]]\nname = "my slack"\n',
            "/cfg/config.toml, line 2: channels[0].name: 'my slack' is not a channel name "
            "(letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64)",
        ),
        (
            '[[channels]]\nname = "a"\n\n[[channels]]\nname = "a"\n',
            "/cfg/config.toml, line 5: channels[1].name: duplicate channel name 'a'",
        ),
        (
            "[[channels]]\n",
            "/cfg/config.toml, line 1: channels[0]: every [[channels]] needs a name",
        ),
        (
            '[[watch]]\nevent = "host_up"\n',
            '/cfg/config.toml, line 2: watch[0].event: must be "free", "host_down" or "idle_holder", got "host_up"',
        ),
        (
            '[[watch]]\nevent = "host_down"\nhost = "a"\ngpu = 1\n',
            '/cfg/config.toml, line 4: watch[0].gpu: is not used with event = "host_down"',
        ),
        (
            '[[watch]]\nevent = "host_down"\ndown_after_s = 0\n',
            "/cfg/config.toml, line 3: watch[0].down_after_s: must be >= 1, got 0",
        ),
        (
            "[[watch]]\ncount = 1\ndown_after_s = 30\n",
            '/cfg/config.toml, line 3: watch[0].down_after_s: is only used with event = '
            '"host_down"',
        ),
    ],
)
def test_errors_name_file_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, P)
    assert str(err.value) == message


def test_add_and_remove_a_channel_keeps_comments_and_drops_rules_left_with_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "# my lab\npoll_interval_s = 5\n\n"
        '[[watch]]\nhost = "node3"  # the big one\n\n'
        "[[watch]]\nevent = \"host_down\"\n"
    )
    config = edit_config(path, lambda doc: add_channel(doc, "lab-slack"))
    assert config.channels == (ChannelConfig("lab-slack"),)
    assert path.read_text().endswith('[[channels]]\nname = "lab-slack"\n')

    def route(doc) -> None:
        doc["watch"][0]["channels"] = ["desktop", "lab-slack"]
        doc["watch"][1]["channels"] = ["lab-slack"]

    edit_config(path, route)
    assert edit_config(path, lambda doc: None).watch[1].channels == ("lab-slack",)

    result = {}
    config = edit_config(path, lambda doc: result.update(r=remove_channel(doc, "lab-slack")))
    assert result["r"] == (True, 1)
    assert config.channels == ()
    assert config.watch == (WatchSpec(host="node3"),)
    assert path.read_text() == (
        "# my lab\npoll_interval_s = 5\n\n"
        '[[watch]]\nhost = "node3"  # the big one\n'
        'channels = ["desktop"]\n'
    )
    found = {}
    edit_config(path, lambda doc: found.update(r=remove_channel(doc, "lab-slack")))
    assert found["r"] == (False, 0)


def test_add_channel_twice_is_one_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    edit_config(path, lambda doc: add_channel(doc, "phone"))
    added = {}
    config = edit_config(path, lambda doc: added.update(again=add_channel(doc, "phone")))
    assert added["again"] is False
    assert config.channels == (ChannelConfig("phone"),)
