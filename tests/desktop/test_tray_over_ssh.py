"""The whole path a user meets, with nothing scripted: gpu-tray on a real desktop (Xvfb,
trayer, dunst) polling a real sshd whose nvidia-smi replays real captures. A GPU held by
a real process of a user with a long name frees up, and one notification says so; a host
whose key nobody trusted yet opens the trust dialog instead of being polled."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness.desktop import Desktop, missing_tools, wait_for
from tests.harness.scripted import ROOT, app_env, gpu_tray_argv
from tests.harness.sshd import Sshd, make_world

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.sshd,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"desktop tools missing: {missing_tools()}"),
]

ARTIFACTS = ROOT / "tests" / "artifacts"
H100_LOAD = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
H100_IDLE = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_idle_allfields_header.csv"
H100_APPS = "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"

POLL_S = 1
CONFIRM = 2
CONFIG = """poll_interval_s = 1

[notify]
confirm_polls = 2

[[hosts]]
name = "node3"

[[hosts]]
name = "stranger"

[[watch]]
host = "node3"
gpu = 0
"""


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Sshd, Sshd]]:
    world = make_world()
    node3 = Sshd(world, address="127.0.0.41").start()
    stranger = Sshd(world, address="127.0.0.42").start()
    try:
        yield node3, stranger
    finally:
        node3.stop()
        stranger.stop()


@contextmanager
def tray_polling(tmp_path: Path, hosts: tuple[Sshd, Sshd], config: str) -> Iterator[Desktop]:
    """The real gpu-tray on a real desktop, reaching the sshd hosts through ~/.ssh/config;
    ~/.ssh/known_hosts trusts node3 only."""
    node3, stranger = hosts
    world = node3.world
    with Desktop(tmp_path / "desktop") as d:
        ssh = d.home / ".ssh"
        ssh.mkdir(parents=True)
        (ssh / "config").write_text(
            "".join(
                f"Host {alias}\n  HostName {s.address}\n  Port {s.port}\n  User {world.user}\n"
                f"  IdentityFile {world.client_key}\n  ConnectTimeout 5\n"
                for alias, s in (("node3", node3), ("stranger", stranger))
            )
        )
        (ssh / "known_hosts").write_text(node3.known_hosts_line())
        path = tmp_path / "config.toml"
        path.write_text(config)
        d.config_path = path  # type: ignore[attr-defined]
        proc = d.spawn(
            "app", gpu_tray_argv("--config", str(path), "-v"), env=app_env(d.env), cwd=ROOT
        )
        try:
            yield d
            assert "Traceback" not in d.log_of("app")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(10) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


def polls(d: Desktop, line: str) -> int:
    return len(re.findall(re.escape(f"snapshot {line}"), d.log_of("app")))


def test_a_gpu_freed_on_a_real_ssh_host_notifies_once(tmp_path: Path, hosts) -> None:
    node3, _ = hosts
    world = node3.world
    job = world.run_as_user("sleep", "600")
    node3.set_scenario(
        gpus=[{"csv": world.fixture(H100_LOAD)}],
        apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
    )
    try:
        with tray_polling(tmp_path, hosts, CONFIG) as d:
            wait_for(lambda: polls(d, "node3: ok, 0/1 free"), 30, "node3 busy")
            # The user of the busy GPU is whole, not "gputray+" as `ps aux` would print.
            status = subprocess.run(
                gpu_tray_argv("status", "--config", str(d.config_path)),
                env=app_env(d.env),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert world.user in status.stdout
            # The stranger is never polled past its key: the trust dialog asks the user.
            wait_for(lambda: polls(d, "stranger: host_key_unknown"), 30, "the stranger's key")
            wait_for(
                lambda: _window_titled(d, "Trust the host key of stranger?"), 15, "the trust dialog"
            )
            assert d.notifications() == []
            ARTIFACTS.mkdir(exist_ok=True)
            d.screenshot(ARTIFACTS / "desktop-trust-over-ssh.png")

            job.kill()
            node3.set_scenario(gpus=[{"csv": world.fixture(H100_IDLE)}])
            freed = time.monotonic()
            limit = POLL_S * (CONFIRM + 1) + 2
            [note] = wait_for(d.notifications, limit, "the notification")
            assert time.monotonic() - freed <= limit
            assert note["DUNST_SUMMARY"] == "GPU free on node3"
            assert note["DUNST_BODY"] == "node3: GPU 0 (H100 80GB) is free, 79 GiB"
            seen = polls(d, "node3: ok, 1/1 free")
            wait_for(lambda: polls(d, "node3: ok, 1/1 free") >= seen + 3, 30, "three more polls")
            assert len(d.notifications()) == 1
            d.screenshot(ARTIFACTS / "desktop-notification-over-ssh.png")
    finally:
        job.kill()


def test_a_gpu_flapping_on_a_real_ssh_host_never_notifies(tmp_path: Path, hosts) -> None:
    node3, _ = hosts
    world = node3.world
    busy, idle = world.fixture(H100_LOAD), world.fixture(H100_IDLE)
    node3.set_scenario(gpus=[{"csv": busy}])
    # confirm_polls = 4: a run of free polls shorter than that must never notify.
    with tray_polling(
        tmp_path, hosts, CONFIG.replace("confirm_polls = 2", "confirm_polls = 4")
    ) as d:
        wait_for(lambda: polls(d, "node3: ok"), 30, "the first poll")
        free = False
        for _ in range(8):
            free = not free
            node3.set_scenario(gpus=[{"csv": idle if free else busy}])
            seen = polls(d, "node3: ok")
            wait_for(lambda seen=seen: polls(d, "node3: ok") > seen, 15, "the next poll")
        assert polls(d, "node3: ok, 1/1 free") and polls(d, "node3: ok, 0/1 free")
        assert d.notifications() == []
        assert "rule fired" not in d.log_of("app")


def _window_titled(d: Desktop, title: str) -> bool:
    out = d.run("xwininfo", "-root", "-tree", check=False).stdout
    return f'"{title} — gpu-tray"' in out  # Qt adds the application's display name
