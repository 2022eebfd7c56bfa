"""Channels and host events in the real tray on a real desktop (Xvfb, trayer, dunst),
with a scripted cluster. This desktop has no keyring, so the channel has no URL: its
delivery fails, the menu says so in a line at the top, and the desktop notification
is not held up. A host that stops answering, and comes back, is one notification each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.desktop.test_tray_desktop import (
    ARTIFACTS,
    cluster,
    icon_window,
    running_app,
    top_level_windows,
)
from tests.harness.desktop import Desktop, missing_tools, wait_for
from tests.harness.scripted import gpu, host, write_cluster

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}"),
]

CONFIG = """poll_interval_s = 1

[notify]
confirm_polls = 2

[[channels]]
name = "lab-hook"

[[watch]]
host = "node3"
gpu = 2
channels = ["desktop", "lab-hook"]

[[watch]]
event = "host_down"
host = "node9"
down_after_s = 1
"""

FAILING = (
    "Channel lab-hook: not delivered: no URL in the system keyring "
    "(add one: `gpu-tray channel add lab-hook`); retrying in 10 s"
)


def summaries(d: Desktop) -> list[str | None]:
    return [n["DUNST_SUMMARY"] for n in d.notifications()]


def test_host_events_and_a_failing_channel_on_a_real_desktop(tmp_path: Path) -> None:
    with Desktop(tmp_path / "desktop") as d, running_app(d, tmp_path, "app", CONFIG) as app:
        # node9 answers nothing ("timeout" in the scripted cluster): down, once.
        wait_for(lambda: "node9 is down" in summaries(d), 15, "the host-down notification")
        [down] = d.notifications()
        assert re.fullmatch(
            r"node9 has not answered for \d+ s: No answer from node9 within 10 s",
            down["DUNST_BODY"] or "",
        )
        app.set_gpu2(True)
        wait_for(lambda: "GPU free on node3" in summaries(d), 15, "the GPU-free notification")
        # The channel could not be told (no keyring here): a line in the log and the menu.
        wait_for(lambda: FAILING in app.log(), 15, "the channel's failure")
        ARTIFACTS.mkdir(exist_ok=True)
        wid = wait_for(lambda: icon_window(d), 15, "the icon in trayer")
        x, y, w, h = d.window_geometry(wid)
        d.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        wait_for(
            lambda: [m for m in top_level_windows(d, "gpu-tray") if m[1] > 150 and m[2] > 150],
            10,
            "the tray menu",
        )
        d.screenshot(ARTIFACTS / "tray-menu-channel-failing.png", crop=(0, 0, d.size[0], 400))
        d.run("xdotool", "key", "Escape")

        # node9 answers again: back up, once, after two good polls.
        nodes = cluster(True)
        nodes[2] = host("node9", [gpu(0, True)])
        write_cluster(app.cluster_file, nodes)
        wait_for(lambda: "node9 is back up" in summaries(d), 15, "the back-up notification")
        app.wait_polls("node9", 3)
        assert summaries(d) == ["node9 is down", "GPU free on node3", "node9 is back up"]
        assert re.fullmatch(r"node9 is back up \(down \d+ s\)", d.notifications()[2]["DUNST_BODY"])
