"""The tray app routes each rule's firing: to the desktop only when the rule lists
"desktop", to each channel it names (a real Apprise post to a real HTTP endpoint on
loopback), and host events the same way. A failing channel shows a line in the menu
and never holds up the desktop notification."""

from __future__ import annotations

from gpu_tray.core.models import HostSnapshot, HostState
from tests.harness.endpoints import http_endpoint
from tests.ui.app_harness import CONFIG, open_menu, settle
from tests.ui.test_app import node3

TOKEN = "tRaY-h00k-s3cret"
CHANNELS = '\n[[channels]]\nname = "hook"\n'


def refused() -> HostSnapshot:
    return HostSnapshot("node3", HostState.UNREACHABLE, "Connection refused by node3:22")


def test_rules_send_where_their_channels_say(make_app, qtbot) -> None:
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/{TOKEN}"
        app, rec = make_app(
            CONFIG
            + CHANNELS
            + '\n[[watch]]\nhost = "node3"\ngpu = 2\nchannels = ["hook"]\n'
            + '\n[[watch]]\nhost = "node3"\ngpu = 1\nchannels = ["desktop", "hook"]\n'
            + '\n[[watch]]\nhost = "node3"\ngpu = 0\n',
            channel_urls={"hook": url}.get,
        )
        for snap in (node3(), node3(2), node3(2)):
            app.snapshot_arrived.emit(snap)
        qtbot.waitUntil(lambda: len(hook.posts) == 1, timeout=10_000)
        settle(app)
        assert rec.sent == []  # gpu 2's rule does not list the desktop
        assert [(p["title"], p["message"]) for p in hook.json_posts()] == [
            ("GPU free on node3", "node3: GPU 2 (A100 80GB) is free, 79 GiB")
        ]
        for snap in (node3(0, 1, 2), node3(0, 1, 2)):
            app.snapshot_arrived.emit(snap)
        qtbot.waitUntil(lambda: len(hook.posts) == 2, timeout=10_000)
        settle(app)
        # The desktop gets the rules that list it (GPU 0 by default, GPU 1 by name) merged
        # into one notification; the channel gets GPU 1 only.
        [note] = rec.sent
        assert (note.summary, note.body) == (
            "2 GPUs free on node3",
            "node3: GPU 1 (A100 80GB) is free, 79 GiB\nnode3: GPU 0 (A100 80GB) is free, 79 GiB",
        )
        assert hook.json_posts()[1]["message"] == "node3: GPU 1 (A100 80GB) is free, 79 GiB"
        assert app.channels.wait_idle(5)
        assert app.channels.results == [
            ("hook", "GPU free on node3", True),
            ("hook", "GPU free on node3", True),
        ]


def test_host_events_reach_the_desktop_and_the_channel_once(make_app, qtbot) -> None:
    clock = [1000.0]
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/{TOKEN}"
        app, rec = make_app(
            CONFIG
            + CHANNELS
            + '\n[[watch]]\nevent = "host_down"\ndown_after_s = 60\n'
            + 'channels = ["desktop", "hook"]\n',
            channel_urls={"hook": url}.get,
        )
        app.controller.events._clock = lambda: clock[0]
        for dt, snap in ((0, node3()), (0, refused()), (30, refused()), (30, refused())):
            clock[0] += dt
            app.snapshot_arrived.emit(snap)
        for dt, snap in ((300, refused()), (480, node3()), (10, node3()), (10, node3())):
            clock[0] += dt
            app.snapshot_arrived.emit(snap)
        qtbot.waitUntil(lambda: len(hook.posts) == 2, timeout=10_000)
        settle(app)
        expected = [
            ("node3 is down", "node3 has not answered for 60 s: Connection refused by node3:22"),
            ("node3 is back up", "node3 is back up (down 14 min)"),
        ]
        assert [(n.summary, n.body, n.actions) for n in rec.sent] == [(*e, ()) for e in expected]
        assert [(p["title"], p["message"]) for p in hook.json_posts()] == expected


def test_a_failing_channel_is_a_menu_line_and_the_desktop_still_hears(make_app, qtbot) -> None:
    with http_endpoint() as hook:
        hook.status = 500
        url = f"json://127.0.0.1:{hook.port}/{TOKEN}"
        app, rec = make_app(
            CONFIG + CHANNELS + '\n[[watch]]\nhost = "node3"\nchannels = ["desktop", "hook"]\n',
            channel_urls={"hook": url}.get,
        )
        for snap in (node3(), node3(2), node3(2)):
            app.snapshot_arrived.emit(snap)
        settle(app)
        [note] = rec.sent
        assert note.summary == "GPU free on node3"
        line = (
            "Channel hook: not delivered: Failed to send JSON POST "
            "notification: Internal server error., error=500.; retrying in 10 s"
        )
        qtbot.waitUntil(lambda: line in app.state().notes, timeout=10_000)
        texts = [a.text() for a in open_menu(app).actions()]
        assert any(t.startswith("Channel hook: not delivered: Failed to send") for t in texts)
        assert not any(TOKEN in t for t in texts)
        # Polling goes on while the channel waits to retry.
        app.snapshot_arrived.emit(node3())
        qtbot.waitUntil(lambda: app.latest["node3"] is not None, timeout=1000)
        # It gets through on the retry: the line goes away.
        hook.status = 200
        app.refresh_now()  # also retries failed channels now, instead of in 10 s
        qtbot.waitUntil(lambda: len(hook.posts) == 2, timeout=10_000)
        qtbot.waitUntil(lambda: line not in app.state().notes, timeout=10_000)
        assert app.channels.results == [("hook", "GPU free on node3", True)]
