"""Polling real sshd servers: the data that comes back, and the connection it comes over."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.ssh.probe import SshProbe
from gpu_tray.sources.ssh.session import SshSession
from tests.ssh.conftest import host_for, known_hosts

pytestmark = pytest.mark.sshd

H100_LOAD = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
H100_APPS = "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"


def probe_for(sshd, tmp_path: Path, **kw) -> SshProbe:
    host = host_for(sshd, **kw)
    return SshProbe(
        host,
        NoSecrets(),
        session=SshSession(host, NoSecrets(), known_hosts=known_hosts(tmp_path, sshd)),
    )


def test_key_auth_full_usernames_and_reuse(sshd, world, tmp_path: Path) -> None:
    job = world.run_as_user("sleep", "600")
    try:
        sshd.set_scenario(
            gpus=[{"csv": world.fixture(H100_LOAD)}],
            apps={"csv": world.fixture(H100_APPS), "pids": [job.pid, 999_999_9]},
        )
        probe = probe_for(sshd, tmp_path)
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
        [gpu] = snap.gpus
        assert gpu.name == "NVIDIA H100 80GB HBM3"
        assert [(p.pid, p.user) for p in gpu.processes] == [
            (job.pid, "gputray-tester-long"),
            (999_999_9, None),  # not visible (another container, or gone): no owner
        ]
        assert gpu.processes[1].name == "/root/tools/memhog"
        for _ in range(3):
            [again] = probe.poll()
            assert again.ok
        assert probe.session.connects == 1  # one connection, reused for every poll
    finally:
        job.kill()
        probe.close()
