"""The whole path a user meets, with nothing scripted: gpu-tray on a real desktop (Xvfb,
trayer, dunst) polling a real sshd whose nvidia-smi replays real captures. A GPU held by
a real process of a user with a long name frees up, and one notification says so; a host
whose key nobody trusted yet opens the trust dialog instead of being polled."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
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


def test_a_gpu_freed_on_a_real_ssh_host_notifies_once(tmp_path: Path, hosts) -> None:
    node3, stranger = hosts
    world = node3.world
    job = world.run_as_user("sleep", "600")
    node3.set_scenario(
        gpus=[{"csv": world.fixture(H100_LOAD)}],
        apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
    )
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
        (ssh / "known_hosts").write_text(node3.known_hosts_line())  # not the stranger's
        config = tmp_path / "config.toml"
        config.write_text(CONFIG)
        proc = d.spawn(
            "app", gpu_tray_argv("--config", str(config), "-v"), env=app_env(d.env), cwd=ROOT
        )
        try:
            wait_for(
                lambda: re.search(r"snapshot node3: ok, 0/1 free", d.log_of("app")),
                30,
                "node3 busy",
            )
            # The user of the busy GPU is whole, not "gputray+" as `ps aux` would print.
            status = subprocess.run(
                gpu_tray_argv("status", "--config", str(config)),
                env=app_env(d.env),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert world.user in status.stdout
            # The stranger is never polled past its key: the trust dialog asks the user.
            wait_for(
                lambda: "snapshot stranger: host_key_unknown" in d.log_of("app"),
                30,
                "the stranger's key",
            )
            wait_for(
                lambda: _window_titled(d, "Trust the host key of stranger?"), 15, "the trust dialog"
            )
            assert d.notifications() == []
            ARTIFACTS.mkdir(exist_ok=True)
            d.screenshot(ARTIFACTS / "desktop-trust-over-ssh.png")

            job.kill()
            node3.set_scenario(gpus=[{"csv": world.fixture(H100_IDLE)}])
            [note] = wait_for(d.notifications, 30, "the notification")
            assert note["DUNST_SUMMARY"] == "GPU free on node3"
            assert note["DUNST_BODY"] == "node3: GPU 0 (H100 80GB) is free, 79 GiB"
            before = len(re.findall(r"snapshot node3: ok, 1/1 free", d.log_of("app")))
            wait_for(
                lambda: (
                    len(re.findall(r"snapshot node3: ok, 1/1 free", d.log_of("app"))) >= before + 3
                ),
                30,
                "three more polls",
            )
            assert len(d.notifications()) == 1
            d.screenshot(ARTIFACTS / "desktop-notification-over-ssh.png")
            assert d.log_of("app").count("connected to") >= 1
            assert "Traceback" not in d.log_of("app")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(10) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            job.kill()


def _window_titled(d: Desktop, title: str) -> bool:
    out = d.run("xwininfo", "-root", "-tree", check=False).stdout
    return f'"{title} — gpu-tray"' in out  # Qt adds the application's display name
