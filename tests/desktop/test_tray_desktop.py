"""The real gpu-tray process on a real desktop: Xvfb, a private D-Bus, trayer, dunst.

The cluster is scripted (GPU_TRAY_DEMO_SCRIPT): the test rewrites a JSON file
that the app reads on every poll, so "GPU 2 on node3 becomes free" happens
exactly when the test says. Everything the user meets is real: the tray
embedding, the notification daemon, its context menu, the clipboard.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.desktop import Desktop, missing_tools, wait_for
from tests.harness.scripted import ROOT, app_env, gpu, gpu_tray_argv, host, write_cluster

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}"),
]

ARTIFACTS = ROOT / "tests" / "artifacts"
POLL_S = 1
CONFIRM = 2
COMMAND = "ssh -t node3 'export CUDA_VISIBLE_DEVICES=2; exec \"$SHELL\" -l'"


def cluster(gpu2_free: bool) -> list[dict]:
    return [
        host(
            "node3",
            [gpu(0, False), gpu(1, True), gpu(2, gpu2_free, user="priya.raman"), gpu(3, False)],
        ),
        host(
            "node7",
            [gpu(0, False, name="NVIDIA L40S", user="mchen"), gpu(1, False, name="NVIDIA L40S")],
        ),
        host("node9", [], state="timeout", error="No answer from node9 within 10 s"),
    ]


def config_text(confirm: int = CONFIRM, watch: str = '[[watch]]\nhost = "node3"\ngpu = 2\n') -> str:
    return f"poll_interval_s = {POLL_S}\n\n[notify]\nconfirm_polls = {confirm}\n\n{watch}"


@dataclass
class RunningApp:
    desktop: Desktop
    proc: subprocess.Popen
    name: str
    cluster_file: Path
    config_file: Path

    def log(self) -> str:
        return self.desktop.log_of(self.name)

    def snapshots(self, host_name: str) -> list[str]:
        """What each poll of `host_name` saw, from the app's debug log: "ok, 1/4 free"."""
        return re.findall(rf"snapshot {re.escape(host_name)}: (.+)", self.log())

    def wait_polls(self, host_name: str, more: int, timeout: float = 15) -> list[str]:
        start = len(self.snapshots(host_name))
        return wait_for(
            lambda: len(self.snapshots(host_name)) >= start + more and self.snapshots(host_name),
            timeout,
            f"{more} more polls of {host_name}",
        )

    def set_gpu2(self, free: bool) -> None:
        write_cluster(self.cluster_file, cluster(free))


@contextmanager
def running_app(
    d: Desktop, tmp: Path, name: str, config: str, gpu2_free: bool = False
) -> Iterator[RunningApp]:
    tmp.mkdir(parents=True, exist_ok=True)
    cluster_file, config_file = tmp / "cluster.json", tmp / "config.toml"
    write_cluster(cluster_file, cluster(gpu2_free))
    config_file.write_text(config)
    env = app_env(d.env, GPU_TRAY_DEMO_SCRIPT=str(cluster_file))
    proc = d.spawn(
        name, gpu_tray_argv("--demo", "--config", str(config_file), "-v"), env=env, cwd=ROOT
    )
    app = RunningApp(d, proc, name, cluster_file, config_file)
    try:
        wait_for(lambda: app.snapshots("node3") or proc.poll() is not None, 20, "the first poll")
        assert proc.poll() is None, app.log()
        yield app
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(
                    f"gpu-tray did not quit on SIGTERM:\n{app.log()[-2000:]}"
                ) from None
            assert code == 0, app.log()[-2000:]
        assert "Traceback" not in app.log(), app.log()


@pytest.fixture(scope="module")
def desktop(tmp_path_factory) -> Iterator[Desktop]:
    with Desktop(tmp_path_factory.mktemp("desktop")) as d:
        yield d


@pytest.fixture
def fresh(desktop: Desktop) -> Desktop:
    """The shared desktop with an empty notification log and no notification on screen
    (dunst stacks a duplicate of one still shown instead of showing it again)."""
    desktop.run("dunstctl", "close-all")
    desktop.notifications_log.write_text("")
    return desktop


def icon_window(d: Desktop) -> str | None:
    for line in d.tray_children():
        if '("gpu-tray" "gpu-tray")' in line:
            return line.split()[0]
    return None


def top_level_windows(d: Desktop, wm_class: str) -> list[tuple[str, int, int]]:
    """(id, width, height) of the mapped top-level windows of a class."""
    out = d.run("xwininfo", "-root", "-children").stdout
    found = []
    for line in out.splitlines():
        m = re.match(
            r'\s*(0x[0-9a-f]+) .*\("[^"]*" "' + re.escape(wm_class) + r'"\)\s+(\d+)x(\d+)', line
        )
        if m:
            wid = m.group(1)
            state = d.run("xwininfo", "-id", wid, check=False).stdout
            if "Map State: IsViewable" in state:
                found.append((wid, int(m.group(2)), int(m.group(3))))
    return found


def read_clipboard(d: Desktop) -> str:
    script = "from PySide6.QtWidgets import QApplication; app = QApplication([]); print(app.clipboard().text(), end='')"
    return d.run(sys.executable, "-c", script, timeout=20).stdout


def pixel_colours(png: Path, box: tuple[int, int, int, int]) -> set[str]:
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    x, y, w, h = box
    return {image.pixelColor(i, j).name() for i in range(x, x + w) for j in range(y, y + h)}


def test_icon_embeds_in_the_tray_and_the_menu_opens(fresh: Desktop, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(fresh, tmp_path, "app-icon", config_text()) as app:
        wid = wait_for(lambda: icon_window(fresh), 15, "the icon in trayer")
        assert "system tray available: showing the icon (XEmbed)" in app.log()
        x, y, w, h = fresh.window_geometry(wid)
        assert (w, h) == (22, 22)  # trayer's 24 px panel
        app.wait_polls("node3", 1)
        # Amber: GPU 1 on node3 is free, but the only watch asks for GPU 2.
        top = (w // 2 - 1, 2, 3, 3)
        wait_for(
            lambda: (
                pixel_colours(fresh.screenshot(tmp_path / "icon.png", crop=(x, y, w, h)), top)
                == {"#f9a825"}
            ),
            5,
            "an amber icon",
        )
        # Green once what the watch asks for is free.
        app.set_gpu2(True)
        wait_for(
            lambda: (
                pixel_colours(fresh.screenshot(tmp_path / "icon.png", crop=(x, y, w, h)), top)
                == {"#2e7d32"}
            ),
            5,
            "a green icon",
        )
        fresh.screenshot(ARTIFACTS / "tray-icon.png", crop=(x - 40, 0, w + 42, 26), zoom=8)

        # Left click: the status window opens; another puts it away.
        fresh.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        wait_for(lambda: status_window(fresh), 10, "the status window after a left click")
        time.sleep(1)  # two clicks closer than the double-click interval are a double click
        fresh.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        wait_for(lambda: not status_window(fresh), 10, "the status window to close")
        # Right click: the menu opens; Down selects node3 (the first enabled entry), Right opens it.
        fresh.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
        menus = wait_for(
            lambda: [m for m in top_level_windows(fresh, "gpu-tray") if m[1] > 150 and m[2] > 150],
            10,
            "the tray menu",
        )
        fresh.run("xdotool", "key", "Down", "Right")
        wait_for(
            lambda: len(top_level_windows(fresh, "gpu-tray")) >= len(menus) + 1,
            10,
            "node3's submenu",
        )
        fresh.screenshot(ARTIFACTS / "tray-menu.png", crop=(0, 0, fresh.size[0], 400))
        fresh.run("xdotool", "key", "Escape", "Escape")


def test_a_watched_gpu_that_frees_up_gives_exactly_one_notification(
    fresh: Desktop, tmp_path: Path
) -> None:
    with running_app(fresh, tmp_path, "app-free", config_text()) as app:
        app.wait_polls("node3", 1)
        app.set_gpu2(True)
        started = time.monotonic()
        limit = POLL_S * (CONFIRM + 1) + 2
        [note] = wait_for(fresh.notifications, limit, "the notification")
        assert time.monotonic() - started <= limit
        assert note["DUNST_APP_NAME"] == "gpu-tray"
        assert note["DUNST_SUMMARY"] == "GPU free on node3"
        assert note["DUNST_BODY"] == "node3: GPU 2 (A100 80GB) is free, 79 GiB"
        assert note["DUNST_DESKTOP_ENTRY"] == "gpu-tray"
        # It stays free for several more polls: still one notification.
        app.wait_polls("node3", 3)
        assert len(fresh.notifications()) == 1

        dunst = wait_for(lambda: top_level_windows(fresh, "Dunst"), 5, "dunst's window")
        wid, dw, dh = dunst[0]
        dx, dy, _, _ = fresh.window_geometry(wid)
        fresh.screenshot(ARTIFACTS / "notification.png", crop=(dx - 10, dy - 10, dw + 20, dh + 20))
        # A click on the notification runs its default action: copy the command.
        fresh.run("xdotool", "mousemove", str(dx + dw // 2), str(dy + dh // 2), "click", "1")
        wait_for(lambda: "copied to the clipboard" in app.log(), 10, "the copy")
        assert read_clipboard(fresh) == COMMAND


def test_a_gpu_flapping_faster_than_the_confirm_window_never_notifies(
    fresh: Desktop, tmp_path: Path
) -> None:
    # confirm_polls = 4: even if this test misses a poll now and then, no run reaches 4.
    with running_app(fresh, tmp_path, "app-flap", config_text(confirm=4)) as app:
        seen = app.wait_polls("node3", 1)
        free = False
        for _ in range(8):
            free = not free
            app.set_gpu2(free)
            seen = app.wait_polls("node3", 1)
        observed = [s for s in seen if s.startswith("ok")]
        # It really flapped: node3 was seen with GPU 2 free (2/4) and busy (1/4) in turns.
        assert "ok, 2/4 free" in observed and "ok, 1/4 free" in observed
        assert fresh.notifications() == []
        assert "rule fired" not in app.log()


def test_snooze_from_the_notification_menu_silences_the_rule(
    fresh: Desktop, tmp_path: Path
) -> None:
    with running_app(fresh, tmp_path, "app-snooze", config_text(), gpu2_free=True) as app:
        wait_for(
            lambda: len(fresh.notifications()) == 1, POLL_S * (CONFIRM + 1) + 2, "the notification"
        )
        fresh.choose_in_dunst_menu("Snooze 1 h")
        wait_for(lambda: "snoozed 1 rule(s) for 1 h" in app.log(), 10, "the snooze")
        offered = fresh.dmenu_seen.read_text()
        for label in ("Copy command", "Snooze 1 h"):
            assert f"#{label} (GPU free on node3)" in offered
        # A new free period while snoozed: no notification.
        app.set_gpu2(False)
        app.wait_polls("node3", 2)
        app.set_gpu2(True)
        app.wait_polls("node3", CONFIRM + 2)
        assert len(fresh.notifications()) == 1


def test_a_second_gpu_tray_shows_the_first_and_exits(fresh: Desktop, tmp_path: Path) -> None:
    with running_app(fresh, tmp_path, "app-single", config_text()) as app:
        assert top_level_windows(fresh, "gpu-tray") == [] or all(
            w < 150 for _, w, _ in top_level_windows(fresh, "gpu-tray")
        )
        env = app_env(fresh.env, GPU_TRAY_DEMO_SCRIPT=str(app.cluster_file))
        second = subprocess.run(
            gpu_tray_argv("--demo"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert (second.returncode, second.stdout) == (0, "")
        assert second.stderr.endswith("gpu-tray is already running; asked it to show its window.\n")
        wait_for(
            lambda: "another gpu-tray asked this one to show itself" in app.log(), 10, "the request"
        )
        windows = wait_for(
            lambda: [w for w in top_level_windows(fresh, "gpu-tray") if w[1] >= 400],
            10,
            "the status window",
        )
        fresh.screenshot(tmp_path / "status-window.png")
        assert len(windows) == 1


def status_window(d: Desktop) -> list[tuple[str, int, int]]:
    return [w for w in top_level_windows(d, "gpu-tray") if w[1] >= 400]


def test_without_a_tray_the_window_shows_until_a_tray_appears(tmp_path: Path) -> None:
    with (
        Desktop(tmp_path / "desk", tray=False) as d,
        running_app(d, tmp_path / "app", "app-notray", config_text()) as app,
    ):
        wait_for(lambda: status_window(d), 15, "the status window")
        assert "no system tray: showing the status window" in app.log()
        d.start_tray()
        wait_for(lambda: icon_window(d), 20, "the icon once trayer runs")
        wait_for(lambda: not status_window(d), 10, "the window to go")
        # The panel restarts: the window stands in meanwhile, and the icon comes back.
        d.stop_tray()
        wait_for(lambda: status_window(d), 10, "the status window again")
        d.start_tray()
        wait_for(lambda: icon_window(d), 20, "the icon in the new panel")
        wait_for(lambda: not status_window(d), 10, "the window to go again")


def test_without_a_notification_service_it_falls_back_and_says_so(tmp_path: Path) -> None:
    with (
        Desktop(tmp_path / "desk", notifications=False) as d,
        running_app(d, tmp_path / "app", "app-nodunst", config_text(), gpu2_free=True) as app,
    ):
        wait_for(lambda: "notifications: using tray balloon" in app.log(), 10, "the fallback")
        assert (
            "notifications: freedesktop unavailable: NotifyError: no notification service"
            in app.log()
        )
        wait_for(lambda: "rule fired" in app.log(), POLL_S * (CONFIRM + 1) + 2, "the rule")
        # Qt's own balloon pops up next to the icon.
        wait_for(
            lambda: [w for w in top_level_windows(d, "gpu-tray") if 100 < w[1] < 600],
            10,
            "the balloon",
        )


def test_first_run_without_a_config_shows_the_demo_and_says_how_to_add_hosts(
    fresh: Desktop,
) -> None:
    config = Path(fresh.env["XDG_CONFIG_HOME"]) / "gpu-tray" / "config.toml"
    assert not config.exists()
    proc = fresh.spawn("app-first-run", gpu_tray_argv("-v"), env=app_env(fresh.env), cwd=ROOT)
    try:
        [note] = wait_for(fresh.notifications, 15, "the first-run notification")
        assert note["DUNST_SUMMARY"] == "gpu-tray is running"
        assert note["DUNST_BODY"] == (
            f"First run: this is the demo cluster.\nAdd your hosts in Settings… (they are saved to {config})."
        )
        wait_for(lambda: icon_window(fresh), 15, "the icon")
        wait_for(lambda: "snapshot demo-a100: ok" in fresh.log_of("app-first-run"), 15, "the demo")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not config.exists()  # nothing written behind the user's back
