"""A real Wayland desktop for end-to-end tests: sway (headless) with waybar's tray.

sway refuses to run as root, so everything here (the session bus, sway,
waybar, grim, dbus-send and the app itself) runs as a test user this harness
creates (`gputray-desk`), in a folder under /tmp that the user owns: pytest's
own temp folders are 0700 root. The app needs a Python that user can read; if
the test's virtual environment is not readable, a copy is made in that folder.

Use it as `with SwayDesktop() as d: ...`; `d.env` is the environment of the
processes on this desktop, `d.spawn` and `d.run` run as the test user.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.harness.desktop import DBUS_CONFIG, Desktop, DesktopError, wait_for
from tests.harness.scripted import ROOT
from tests.harness.sni import WATCHER, SniQueries

USER = "gputray-desk"
TOOLS = ("sway", "swaymsg", "waybar", "grim", "dbus-daemon", "dbus-send", "useradd")

SWAY_CONFIG = """xwayland disable
output HEADLESS-1 resolution {width}x{height} bg #2e3440 solid_color
default_border normal
"""

WAYBAR_CONFIG = {
    "layer": "top",
    "position": "top",
    "height": 30,
    "modules-left": ["sway/workspaces"],
    "modules-right": ["tray", "clock"],
    "tray": {"icon-size": 22, "spacing": 6},
    "clock": {"format": "{:%H:%M}"},
}
WAYBAR_STYLE = """* { font-family: "DejaVu Sans"; font-size: 13px; }
window#waybar { background: #3b4252; color: #eceff4; }
#tray, #clock { padding: 0 8px; }
#workspaces button { color: #eceff4; padding: 0 6px; }
"""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def why_not() -> str | None:
    """Why this machine cannot run the Wayland tests, or None."""
    if missing := missing_tools():
        return f"Wayland desktop tools missing: {missing}"
    if os.geteuid() != 0:
        return "creating the test user that runs sway needs root"
    return None


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
             "/usr/sbin/nologin", USER],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(USER)


def user_can_import(python: str, pythonpath: str, user: pwd.struct_passwd, cwd: str) -> bool:
    probe = subprocess.run(
        [python, "-c", "import PySide6.QtGui, jeepney, gpu_tray"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "HOME": cwd},
        cwd=cwd, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    return probe.returncode == 0


class SwayDesktop(SniQueries, Desktop):
    def __init__(self, width: int = 1024, height: int = 768) -> None:
        root = Path(tempfile.mkdtemp(prefix="gpu-tray-wayland-"))
        super().__init__(root, width, height, tray=False, notifications=False)
        self.user = ensure_user()
        self.python = sys.executable
        self.pythonpath = str(ROOT)

    # -- as the test user -----------------------------------------------------------------

    def _as_user(self) -> dict[str, Any]:
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen:
        if argv and argv[0] == sys.executable:  # the app: with a Python the user can read
            argv = [self.python, *argv[1:]]
            env = dict(env or self.env, PYTHONPATH=self.pythonpath)
        return super().spawn(name, argv, env, **kw, **self._as_user())

    def run(
        self, *argv: str, check: bool = True, timeout: float = 10
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=check,
            cwd=self.root, **self._as_user(),
        )  # fmt: skip

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, tray: bool = False, notifications: bool = False) -> None:
        uid, gid = self.user.pw_uid, self.user.pw_gid
        os.chown(self.root, uid, gid)
        self.root.chmod(0o755)  # the app's files (cluster, config) are written here by root
        for sub in ("home", "run", "config", "data", "state", "cache", "bus", "shots"):
            (self.root / sub).mkdir(exist_ok=True)
            os.chown(self.root / sub, uid, gid)
        (self.root / "run").chmod(0o700)
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "NO_AT_BRIDGE": "1",
        }
        self._find_python()
        self._start_user_dbus()
        self._start_sway()
        self._start_waybar()

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _find_python(self) -> None:
        if user_can_import(self.python, self.pythonpath, self.user, str(self.root)):
            return
        # Not readable by the test user (a venv under a private folder): copy what it needs.
        venv = self.root / "venv"
        shutil.copytree(sys.prefix, venv, symlinks=True)
        shutil.copytree(ROOT / "gpu_tray", self.root / "src" / "gpu_tray")
        subprocess.run(["chmod", "-R", "a+rX", str(venv), str(self.root / "src")], check=True)
        self.python = str(venv / "bin" / "python")
        self.pythonpath = str(self.root / "src")
        if not user_can_import(self.python, self.pythonpath, self.user, str(self.root)):
            raise DesktopError(f"{USER} cannot import gpu_tray even from a copy in {self.root}")

    def _start_user_dbus(self) -> None:
        self._run_bus(DBUS_CONFIG.format(dir=self.root / "bus"))

    def _start_sway(self) -> None:
        conf = self.root / "sway.conf"
        conf.write_text(SWAY_CONFIG.format(width=self.size[0], height=self.size[1]))
        env = dict(
            self.env, WLR_BACKENDS="headless", WLR_LIBINPUT_NO_DEVICES="1",
            WLR_RENDERER="pixman", WLR_HEADLESS_OUTPUTS="1",
        )  # fmt: skip
        self.spawn("sway", ["sway", "--config", str(conf)], env=env)
        run = self.root / "run"
        socket = wait_for(
            lambda: next(iter(sorted(run.glob("wayland-*[0-9]"))), None), 20, "sway's socket"
        )
        self.env["WAYLAND_DISPLAY"] = socket.name
        self.env["SWAYSOCK"] = wait_for(
            lambda: next(iter(glob.glob(str(run / "sway-ipc.*.sock"))), None), 10, "sway's IPC"
        )
        self.env["XDG_SESSION_TYPE"] = "wayland"
        self.env["QT_QPA_PLATFORM"] = "wayland"

    def _start_waybar(self) -> None:
        conf, style = self.root / "waybar.json", self.root / "waybar.css"
        conf.write_text(json.dumps(WAYBAR_CONFIG))
        style.write_text(WAYBAR_STYLE)
        self.spawn("waybar", ["waybar", "--config", str(conf), "--style", str(style)])
        # waybar's tray module is the StatusNotifierWatcher and host.
        wait_for(lambda: self.bus_name_has_owner(WATCHER), 30, "waybar's SNI watcher")

    # -- looking at it ----------------------------------------------------------------------

    def tree(self) -> dict[str, Any]:
        return json.loads(self.run("swaymsg", "--raw", "--type", "get_tree").stdout)

    def windows(self, app_id: str) -> list[dict[str, Any]]:
        """The windows sway manages for an app id, with their rectangles."""
        found: list[dict[str, Any]] = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("app_id") == app_id and node.get("visible", True):
                found.append(node)
            for child in node.get("nodes", []) + node.get("floating_nodes", []):
                walk(child)

        walk(self.tree())
        return found

    def screenshot(
        self, path: Path, crop: tuple[int, int, int, int] | None = None, zoom: int = 1
    ) -> Path:
        """grim, as the test user, into its folder; then copied to `path`."""
        shot = self.root / "shots" / path.name
        argv = ["grim"]
        if crop:
            x, y, w, h = crop
            argv += ["-g", f"{x},{y} {w}x{h}"]
        if zoom > 1:
            argv += ["-s", str(zoom)]
        self.run(*argv, str(shot), timeout=30)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, path)
        return path

    def wait_for_log(self, name: str, text: str, timeout: float) -> None:
        wait_for(lambda: text in self.log_of(name), timeout, f"{text!r} in {name}'s log")
