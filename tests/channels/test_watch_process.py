"""`gpu-tray watch` as a process, on real parts: a real sshd host whose nvidia-smi replays
real captures, a real gnome-keyring holding the channel's URL, and a real HTTP endpoint
receiving Apprise's json:// posts. A GPU freeing reaches the channel exactly once; the
host going down (sshd and its sessions killed) and coming back reach it exactly once
each; it never imports Qt; SIGTERM stops it with exit 0 and the history written; the
URL is in no file and no output."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.credentials.cli_helpers import REPO, User
from tests.harness.endpoints import HttpEndpoint, http_endpoint, wait_until

pytestmark = [pytest.mark.sshd, pytest.mark.keyring, pytest.mark.slow, pytest.mark.timeout(240)]

H100_LOAD = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
H100_IDLE = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_idle_allfields_header.csv"
H100_APPS = "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"
TOKEN = "wAtCh-T0ken-9f8e7d"
QT = ("PySide6", "shiboken6", "pyqtgraph")
# Runs `gpu-tray watch` in this process's Python and reports, at exit, any Qt module
# that was imported along the way.
WRAPPER = (
    "import sys\n"
    "from gpu_tray.cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    f"qt = sorted(m for m in sys.modules if m.split('.')[0] in {QT!r})\n"
    "print('QT-MODULES:', qt, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def config_for(sshd, world) -> str:
    return f"""\
poll_interval_s = 1

[notify]
confirm_polls = 2

[[hosts]]
name = "node3"
hostname = "{sshd.address}"
port = {sshd.port}
user = "{world.user}"
identity_file = "{world.client_key}"

[[channels]]
name = "lab-hook"

[[watch]]
host = "node3"
gpu = 0
channels = ["lab-hook"]

[[watch]]
event = "host_down"
down_after_s = 2
channels = ["desktop", "lab-hook"]
"""


def titles(hook: HttpEndpoint) -> list[str]:
    return [p["title"] for p in hook.json_posts()]


def polls(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(f"snapshot node3: {text}")


def test_watch_sends_gpu_free_host_down_and_back_up_once_each(
    secret_service, sshd, world, tmp_path: Path
) -> None:
    u = User(tmp_path / "user")
    (u.home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line())
    u.config.parent.mkdir(parents=True)
    u.config.write_text(config_for(sshd, world))
    job = world.run_as_user("sleep", "600")
    sshd.set_scenario(
        gpus=[{"csv": world.fixture(H100_LOAD)}],
        apps={"csv": world.fixture(H100_APPS), "pids": [job.pid]},
    )
    log = tmp_path / "watch.log"
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"
        added = u.run("channel", "add", "lab-hook", "--stdin", input=url + "\n")
        assert added.returncode == 0, added.stderr
        with log.open("w") as err, (tmp_path / "watch.out").open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRAPPER, "watch", "-v"],
                cwd=REPO,
                env=u.env(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_until(lambda: polls(log, "ok"), 30, "the first good poll")
            assert hook.posts == []

            # The GPU frees: one message, however many polls follow.
            job.kill()
            sshd.set_scenario(gpus=[{"csv": world.fixture(H100_IDLE)}])
            wait_until(lambda: titles(hook), 15, "the GPU-free post")
            seen = polls(log, "ok")
            wait_until(lambda: polls(log, "ok") >= seen + 4, 20, "four more polls")
            assert [(p["title"], p["message"]) for p in hook.json_posts()] == [
                ("GPU free on node3", "node3: GPU 0 (H100 80GB) is free, 79 GiB")
            ]

            # The host dies: one "down", however long it stays down.
            sshd.kill()
            wait_until(lambda: len(hook.posts) == 2, 30, "the host-down post")
            [_, down] = hook.json_posts()
            assert down["title"] == "node3 is down"
            assert re.fullmatch(r"node3 has not answered for \d+ s: .+", down["message"]), down[
                "message"
            ]
            failed = polls(log, "unreachable")
            wait_until(lambda: polls(log, "unreachable") >= failed + 2, 40, "two more failed polls")
            assert len(hook.posts) == 2

            # It comes back: one "back up", after two good polls in a row.
            sshd.start()
            wait_until(lambda: len(hook.posts) == 3, 60, "the back-up post")
            up = hook.json_posts()[2]
            assert up["title"] == "node3 is back up"
            assert re.fullmatch(r"node3 is back up \(down \d+ s\)", up["message"]), up["message"]
            seen = polls(log, "ok")
            wait_until(lambda: polls(log, "ok") >= seen + 3, 20, "three more polls")
            assert titles(hook) == ["GPU free on node3", "node3 is down", "node3 is back up"]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            job.kill()
    stderr = log.read_text()
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    assert "QT-MODULES: []" in stderr
    assert "SIGTERM: stopping" in stderr
    # The log says what was sent and where: the channel's name, never the URL.
    assert 'sent "GPU free on node3" to channel lab-hook' in stderr
    assert 'sent "node3 is down" to channel lab-hook' in stderr
    assert 'sent "node3 is back up" to channel lab-hook' in stderr
    assert 'for the desktop (none here): "node3 is down"' in stderr
    written = re.search(r"stopped: (\d+) snapshot\(s\) written to the history", stderr)
    assert written and int(written.group(1)) > 0
    with sqlite3.connect(u.data_dir / "gpu-tray" / "history.sqlite3") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert tables
    # The URL is in no output and no file.
    assert TOKEN not in stderr
    assert TOKEN not in (tmp_path / "watch.out").read_text()
    assert u.files_containing(TOKEN) == []
    assert [p for p in tmp_path.glob("*.log") if TOKEN in p.read_text()] == []


def test_sigint_stops_it_cleanly_too(secret_service, sshd, world, tmp_path: Path) -> None:
    u = User(tmp_path / "user")
    (u.home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line())
    u.config.parent.mkdir(parents=True)
    u.config.write_text(config_for(sshd, world))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_tray", "watch", "-v"],
        cwd=REPO,
        env=u.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        seen = ""
        assert proc.stderr is not None
        while "snapshot node3: ok" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "snapshot node3: ok" in seen
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, seen + err
    assert "SIGINT: stopping" in err
    assert "stopped: " in err
    assert "Traceback" not in seen + err
