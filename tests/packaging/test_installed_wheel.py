"""gpu-tray as pip and pipx install it: build the sdist and the wheel (the wheel from the
sdist, as `python -m build` does), install the wheel into a clean venv outside the
checkout, and run it from a folder outside the checkout with no PYTHONPATH.

The build starts from a copy of the files git knows (tracked, or new and not ignored),
so it sees what a fresh clone would, and writes nothing into the checkout. pip installs
from its cache (the same wheels packaging/test.sh downloaded), so the venv costs about
10 s here instead of a 370 MB download.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import gpu_tray
from gpu_tray.platform import resources
from tests.harness.desktop import Desktop, missing_tools, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GPU_KEYS = {
    "index", "uuid", "name", "memory_total_mib", "memory_used_mib", "utilization_pct",
    "temperature_c", "power_w", "free", "mig_devices", "processes",
}  # fmt: skip
HOST_KEYS = {"name", "state", "error", "polled_at", "latency_ms", "gpus"}


def pip_cache() -> str:
    """The user's pip cache. tests/conftest.py moved HOME and XDG_CACHE_HOME to a
    private folder, where pip would find an empty cache and download everything."""
    return os.environ.get("PIP_CACHE_DIR") or str(
        Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "pip"
    )


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300):
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done


def checked(argv: list[str], **kw) -> subprocess.CompletedProcess:
    done = run(argv, **kw)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    outside: Path  # a folder outside the checkout to run from
    env: dict[str, str]  # no PYTHONPATH; the venv's bin first on PATH, as pipx arranges

    @property
    def gpu_tray(self) -> str:
        return str(self.venv / "bin" / "gpu-tray")

    @property
    def site_packages(self) -> Path:
        [found] = (self.venv / "lib").glob("python3*/site-packages")
        return found


def copy_of_the_checkout(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():  # a deleted file git still tracks is not part of the tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    assert not base.is_relative_to(ROOT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_CACHE_DIR=pip_cache(), PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    src = copy_of_the_checkout(base / "src")
    checked(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(base / "dist"),
         str(src)],
        cwd=base, env=env,
    )  # fmt: skip
    [sdist] = (base / "dist").glob("gpu_tray-*.tar.gz")
    [wheel] = (base / "dist").glob("gpu_tray-*.whl")
    venv = base / "venv"
    checked([sys.executable, "-m", "venv", str(venv)], cwd=base, env=env)
    checked([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
            cwd=base, env=env)  # fmt: skip
    outside = base / "elsewhere"
    (outside / "home").mkdir(parents=True)
    run_env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    run_env.update(
        PATH=f"{venv / 'bin'}:/usr/bin:/bin",
        HOME=str(outside / "home"),
        XDG_CONFIG_HOME=str(outside / "home" / ".config"),
        XDG_DATA_HOME=str(outside / "home" / ".local" / "share"),
        XDG_STATE_HOME=str(outside / "home" / ".local" / "state"),
        XDG_CACHE_HOME=str(outside / "home" / ".cache"),
    )
    return Installed(sdist, wheel, venv, outside, run_env)


def test_the_sdist_and_the_wheel_carry_the_icon_desktop_entries_and_metainfo(
    installed: Installed,
) -> None:
    version = gpu_tray.__version__
    with zipfile.ZipFile(installed.wheel) as whl:
        in_wheel = set(whl.namelist())
    with tarfile.open(installed.sdist) as tar:
        in_sdist = set(tar.getnames())
    for relative in resources.SHIPPED:
        assert f"gpu_tray/data/{relative}" in in_wheel
        assert f"gpu_tray-{version}/{relative}" in in_sdist
        # The very same bytes as the checkout's.
        with zipfile.ZipFile(installed.wheel) as whl:
            assert whl.read(f"gpu_tray/data/{relative}") == (ROOT / relative).read_bytes()
    assert not [n for n in in_wheel if n.endswith(".sh")]
    assert "gpu_tray/py.typed" in in_wheel


def test_the_installed_code_is_the_venvs_not_the_checkouts(installed: Installed) -> None:
    probe = (
        "import json, sys, gpu_tray\n"
        "from gpu_tray.platform import resources\n"
        "found = resources.icon()\n"
        "print(json.dumps({'file': gpu_tray.__file__, 'path': sys.path,\n"
        "                  'icon': str(found.path), 'origin': found.origin.value}))\n"
    )
    done = checked(
        [str(installed.venv / "bin" / "python"), "-c", probe],
        cwd=installed.outside, env=installed.env,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert Path(seen["file"]).is_relative_to(installed.site_packages)
    assert [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(ROOT)] == []
    assert seen["icon"] == str(installed.site_packages / "gpu_tray/data/resources/gpu-tray.svg")
    assert seen["origin"] == "installed package"


def test_gpu_tray_version(installed: Installed) -> None:
    done = checked([installed.gpu_tray, "--version"], cwd=installed.outside, env=installed.env)
    assert done.stdout == f"gpu-tray {gpu_tray.__version__}\n"


def test_gpu_tray_status_demo_json(installed: Installed) -> None:
    done = run(
        [installed.gpu_tray, "status", "--demo", "--json"],
        cwd=installed.outside, env=installed.env, timeout=120,
    )  # fmt: skip
    # 0 when every demo host is ok, 1 while its flaky host is down: both print everything.
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert {"generated_at", "free_gpus", "total_gpus", "hosts"} <= set(doc)
    assert doc["generated_at"].endswith("Z")
    assert [h["name"] for h in doc["hosts"]][:2] == ["demo-a100", "demo-h100"]
    gpus = [g for h in doc["hosts"] for g in h["gpus"]]
    for host in doc["hosts"]:
        assert set(host) >= HOST_KEYS, host["name"]
        assert host["state"] in ("ok", "timeout"), host  # the demo's flaky host times out
    for gpu in gpus:
        assert set(gpu) >= GPU_KEYS, gpu
        assert isinstance(gpu["free"], bool)
    assert doc["total_gpus"] >= len(gpus) > 0
    assert 0 <= doc["free_gpus"] <= doc["total_gpus"]


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is missing (Debian: pipx)")
def test_pipx_installs_the_wheel_and_uninstalls_it(installed: Installed) -> None:
    """What the README tells users to do, with pipx's folders in the test's tmp."""
    home = installed.outside / "pipx"
    env = dict(
        installed.env,
        PIPX_HOME=str(home / "venvs-home"),
        PIPX_BIN_DIR=str(home / "bin"),
        PIP_CACHE_DIR=pip_cache(),
        PATH=f"{home / 'bin'}:/usr/bin:/bin",
    )
    checked(["pipx", "install", str(installed.wheel)], cwd=installed.outside, env=env)
    done = checked(["gpu-tray", "--version"], cwd=installed.outside, env=env)
    assert done.stdout == f"gpu-tray {gpu_tray.__version__}\n"
    [python] = (home / "venvs-home" / "venvs" / "gpu-tray" / "bin").glob("python")
    probe = "from gpu_tray.platform import resources; f = resources.icon(); print(f.path, f.origin, sep='\\n')"
    done = checked([str(python), "-c", probe], cwd=installed.outside, env=env)
    path, origin = done.stdout.splitlines()
    assert origin == "installed package"
    assert Path(path).is_relative_to(home / "venvs-home" / "venvs" / "gpu-tray")
    checked(["pipx", "uninstall", "gpu-tray"], cwd=installed.outside, env=env)
    assert not (home / "bin" / "gpu-tray").exists()
    assert not (home / "venvs-home" / "venvs" / "gpu-tray").exists()


@pytest.mark.desktop
@pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}")
def test_the_tray_on_xvfb_loads_its_icon_from_the_installed_package(
    installed: Installed, tmp_path: Path
) -> None:
    """A new user's first start after `pipx install`: no config, so the demo cluster, the
    welcome dialog and a notification, all with the icon from site-packages."""
    icon = installed.site_packages / "gpu_tray" / "data" / "resources" / "gpu-tray.svg"
    with Desktop(tmp_path / "desktop") as d:
        env = dict(d.env, PATH=installed.env["PATH"])
        assert "PYTHONPATH" not in env
        proc = d.spawn("installed-app", [installed.gpu_tray, "-v"], env=env, cwd=installed.outside)
        try:
            log = lambda: d.log_of("installed-app")  # noqa: E731
            wait_for(lambda: "snapshot demo-a100: ok" in log() or proc.poll() is not None,
                     60, "the first poll")  # fmt: skip
            assert proc.poll() is None, log()
            assert f"app icon: {icon} (installed package)" in log()
            assert f"app icon loaded: {icon}" in log()
            assert "could not load the app icon" not in log()
            wait_for(
                lambda: any('("gpu-tray" "gpu-tray")' in c for c in d.tray_children()),
                30, "the icon in trayer",
            )  # fmt: skip
            [note] = wait_for(d.notifications, 30, "the first-run notification")
            assert note["DUNST_SUMMARY"] == "gpu-tray is running"
            assert note["DUNST_ICON_PATH"] == str(icon)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
        assert code == 0, d.log_of("installed-app")[-3000:]
        assert "Traceback" not in d.log_of("installed-app")
