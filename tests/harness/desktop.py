"""A real, private desktop for end-to-end tests: Xvfb, a session D-Bus, trayer and dunst.

Everything is started fresh in a temp folder and torn down by `close()`:
- Xvfb picks a free display itself (-displayfd), with no TCP listener;
- a dbus-daemon with its own config: no service activation, so only what the
  test starts answers (no stray notification daemon gets auto-started);
- trayer (an XEmbed system tray, as on many light desktops);
- dunst, with a `script=` rule that appends every notification it receives to
  a JSON-lines file, and a `dmenu=` picker the test steers, so an action is
  chosen through dunst's own context menu, as a user would.

Use it as `with Desktop(tmp_path) as d: ...`; `d.env` is the environment for
the processes that should live on this desktop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOOLS = ("Xvfb", "dbus-daemon", "trayer", "dunst", "dunstctl", "xwininfo", "xdotool", "import")

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

# Appends one JSON object per notification: what dunst received, after its own parsing.
DUNST_LOGGER = """#!{python}
import json, os
keys = ("DUNST_APP_NAME", "DUNST_SUMMARY", "DUNST_BODY", "DUNST_ICON_PATH", "DUNST_URGENCY",
        "DUNST_ID", "DUNST_DESKTOP_ENTRY", "DUNST_TIMEOUT")
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps({{k: os.environ.get(k) for k in keys}}) + "\\n")
"""

# dunst's context menu: pick the line that names the action the test asked for.
DMENU_PICKER = """#!{python}
import sys
want = open({choice!r}, encoding="utf-8").read().strip()
lines = sys.stdin.read().splitlines()
with open({seen!r}, "a", encoding="utf-8") as f:
    f.write("\\n".join(lines) + "\\n--\\n")
for line in lines:
    if line.startswith("#" + want + " "):
        print(line)
        break
"""

DUNSTRC = """[global]
    font = DejaVu Sans 10
    width = 360
    height = 200
    origin = top-right
    offset = 10x40
    frame_width = 2
    icon_position = left
    max_icon_size = 32
    markup = full
    format = "<b>%s</b>\\n%b"
    show_indicators = yes
    dmenu = {dmenu}
    mouse_left_click = do_action, close_current
    mouse_middle_click = close_current
    mouse_right_click = context
    idle_threshold = 0
    history_length = 50
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
[log_everything]
    summary = "*"
    script = {logger}
"""


class DesktopError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `pred` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DesktopError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Desktop:
    def __init__(
        self,
        root: Path,
        width: int = 1024,
        height: int = 768,
        tray: bool = True,
        notifications: bool = True,
    ) -> None:
        self.root = root
        self.want = (tray, notifications)
        self.size = (width, height)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.home = root / "home"
        self.env: dict[str, str] = {}
        self.display = ""
        self.notifications_log = root / "notifications.jsonl"
        self.dmenu_choice = root / "dmenu-choice.txt"
        self.dmenu_seen = root / "dmenu-seen.txt"

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Desktop:
        try:
            self.start(*self.want)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, tray: bool = True, notifications: bool = True) -> None:
        for sub in ("home", "run", "config", "data", "state", "cache"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "run").chmod(0o700)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "QT_QPA_PLATFORM": "xcb",
            "NO_AT_BRIDGE": "1",
        }
        self._start_xvfb()
        self._start_dbus()
        if tray:
            self.start_tray()
        if notifications:
            self.start_dunst()

    def close(self) -> None:
        for _name, proc in reversed(self.procs):
            self._stop(proc)
        self.procs.clear()

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen:
        """Start a process on this desktop, in its own process group, output to a log file."""
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        stdout = kw.pop("stdout", log)
        proc = subprocess.Popen(
            argv,
            env=env or self.env,
            stdout=stdout,
            stderr=kw.pop("stderr", subprocess.STDOUT if stdout is log else log),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kw,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def log_of(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the parts ----------------------------------------------------------------------------

    def _start_xvfb(self) -> None:
        r, w = os.pipe()
        w_, h_ = self.size
        argv = [
            "Xvfb",
            "-displayfd",
            str(w),
            "-screen",
            "0",
            f"{w_}x{h_}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ]
        self.spawn("xvfb", argv, pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            raise DesktopError(f"Xvfb did not report a display: {self.log_of('xvfb')}")
        self.display = f":{number}"
        self.env["DISPLAY"] = self.display

    def _start_dbus(self) -> None:
        bus_dir = self.root / "bus"
        bus_dir.mkdir(exist_ok=True)
        self._run_bus(DBUS_CONFIG.format(dir=bus_dir))

    def _run_bus(self, config: str) -> None:
        """A private dbus-daemon with this config; its address goes into `env`."""
        conf = self.root / "dbus.conf"
        conf.write_text(config)
        proc = self.spawn(
            "dbus",
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        address = proc.stdout.readline().decode().strip()
        if not address:
            raise DesktopError("dbus-daemon did not print its address")
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address

    def start_tray(self) -> None:
        self.spawn(
            "trayer",
            [
                "trayer", "--edge", "top", "--align", "right", "--SetDockType", "true",
                "--SetPartialStrut", "true", "--widthtype", "request", "--height", "24",
                "--transparent", "false", "--tint", "0x2b2b2b", "--expand", "true",
            ],
        )  # fmt: skip
        wait_for(self.tray_window, 10, "trayer's panel window")

    def stop_tray(self) -> None:
        """End trayer, as when a panel crashes or restarts."""
        for entry in [e for e in self.procs if e[0] == "trayer"]:
            self._stop(entry[1])
            self.procs.remove(entry)
        wait_for(lambda: self.tray_window() is None, 10, "trayer's panel to go")

    def start_dunst(self) -> None:
        rc = self.write_dunst_config()
        self.spawn("dunst", ["dunst", "-config", str(rc)])
        wait_for(
            lambda: self.bus_name_has_owner("org.freedesktop.Notifications"), 10, "dunst on the bus"
        )

    def write_dunst_config(self) -> Path:
        """dunstrc with the logging script and the steered menu picker; returns its path."""
        logger = self.root / "dunst-logger.py"
        logger.write_text(
            DUNST_LOGGER.format(python=sys.executable, log=str(self.notifications_log))
        )
        logger.chmod(0o755)
        picker = self.root / "dmenu-picker.py"
        picker.write_text(
            DMENU_PICKER.format(
                python=sys.executable, choice=str(self.dmenu_choice), seen=str(self.dmenu_seen)
            )
        )
        picker.chmod(0o755)
        rc = self.root / "dunstrc"
        rc.write_text(DUNSTRC.format(dmenu=picker, logger=logger))
        return rc

    # -- looking at it ------------------------------------------------------------------------

    def run(
        self, *argv: str, check: bool = True, timeout: float = 10
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=check
        )

    def tray_window(self) -> str | None:
        """trayer's panel window id, once it is mapped."""
        out = self.run("xwininfo", "-root", "-tree", check=False).stdout
        for line in out.splitlines():
            if '("panel" "trayer")' in line or '"trayer")' in line:
                return line.split()[0]
        return None

    def tray_children(self) -> list[str]:
        """The windows embedded in trayer (one per tray icon), with their geometry."""
        panel = self.tray_window()
        if not panel:
            return []
        out = self.run("xwininfo", "-id", panel, "-tree", check=False).stdout
        return [
            line.strip()
            for line in out.splitlines()
            if line.strip().startswith("0x") and "x" in line
        ]

    def window_geometry(self, window: str) -> tuple[int, int, int, int]:
        """(x, y, width, height) in root coordinates."""
        out = self.run("xwininfo", "-id", window).stdout
        vals = {}
        for line in out.splitlines():
            line = line.strip()
            for key in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height"):
                if line.startswith(key + ":"):
                    vals[key] = int(line.split(":")[1])
        return (
            vals["Absolute upper-left X"],
            vals["Absolute upper-left Y"],
            vals["Width"],
            vals["Height"],
        )

    def screenshot(
        self, path: Path, crop: tuple[int, int, int, int] | None = None, zoom: int = 1
    ) -> Path:
        """`import -window root`, optionally cropped (x, y, w, h) and zoomed without smoothing."""
        argv = ["import", "-window", "root"]
        if crop:
            x, y, w, h = crop
            argv += ["-crop", f"{w}x{h}+{x}+{y}", "+repage"]
        if zoom > 1:
            argv += ["-filter", "point", "-resize", f"{zoom * 100}%"]
        argv.append(str(path))
        self.run(*argv, timeout=30)
        return path

    def notifications(self) -> list[dict[str, str | None]]:
        if not self.notifications_log.exists():
            return []
        return [
            json.loads(line) for line in self.notifications_log.read_text().splitlines() if line
        ]

    def bus_name_has_owner(self, name: str) -> bool:
        out = self.run(
            "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner", f"string:{name}", check=False,
        ).stdout  # fmt: skip
        return "boolean true" in out

    def choose_in_dunst_menu(self, label: str) -> None:
        """Open dunst's context menu (as `dunstctl context` does) and pick `label` in it."""
        self.dmenu_choice.write_text(label)
        self.run("dunstctl", "context")
