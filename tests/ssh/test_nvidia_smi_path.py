"""nvidia-smi off the remote PATH, over a real sshd: a host's `nvidia_smi` path reaches
the constant poll script on stdin and is used literally, whatever is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.ssh.nvsmi import FALLBACK_DIRS, MSG_MISSING, POLL_COMMAND
from gpu_tray.sources.ssh.probe import SshProbe
from gpu_tray.sources.ssh.session import SshSession
from tests.ssh.conftest import host_for, known_hosts

pytestmark = pytest.mark.sshd

H100_LOAD = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
# Spaces, both quotes, a command substitution, a semicolon: all literal.
STRANGE = "nvidia tools 'v2\" $(touch PWNED); bin"


def probe_for(sshd, tmp_path: Path, **kw) -> SshProbe:
    host = host_for(sshd, **kw)
    return SshProbe(
        host,
        NoSecrets(),
        session=SshSession(host, NoSecrets(), known_hosts=known_hosts(tmp_path, sshd)),
    )


def real_nvidia_smi_here() -> bool:
    return any(Path(d, "nvidia-smi").exists() for d in FALLBACK_DIRS)


def test_a_host_whose_nvidia_smi_is_only_at_a_configured_path(
    make_sshd, world, tmp_path: Path
) -> None:
    sshd = make_sshd(with_nvidia_smi=False)  # nothing on the remote PATH
    sshd.set_scenario(gpus=[{"csv": world.fixture(H100_LOAD)}])
    folder = world.subdir("custom") / STRANGE
    folder.mkdir(mode=0o755)
    (folder / "nvidia-smi").symlink_to(world.fake_nvsmi)
    configured = str(folder / "nvidia-smi")

    probe = probe_for(sshd, tmp_path, nvidia_smi=configured)
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
        assert [(g.name, g.memory_used_mib) for g in snap.gpus] == [
            ("NVIDIA H100 80GB HBM3", 19818)
        ]
    finally:
        probe.close()
    # The value went on stdin; the command stayed the constant one.
    assert configured not in POLL_COMMAND
    assert not list(world.base.rglob("PWNED*"))
    assert not list(Path(world.base).parent.glob("PWNED*"))


def test_a_configured_path_that_is_wrong_says_where_it_looked(
    make_sshd, world, tmp_path: Path
) -> None:
    sshd = make_sshd()  # on PATH, but the user pointed elsewhere
    probe = probe_for(sshd, tmp_path, nvidia_smi="/opt/nvidia/bin/nvidia-smi")
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (
        HostState.NVIDIA_SMI_MISSING,
        "nvidia-smi was not found at /opt/nvidia/bin/nvidia-smi (nvidia_smi in config.toml)",
    )


def test_without_a_configured_path_a_host_lacking_nvidia_smi_is_missing(
    make_sshd, tmp_path: Path
) -> None:
    if real_nvidia_smi_here():
        pytest.skip("this machine has a real nvidia-smi in one of the usual folders")
    sshd = make_sshd(with_nvidia_smi=False)
    probe = probe_for(sshd, tmp_path)
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
