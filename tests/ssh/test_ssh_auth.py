"""Reaching hosts the way `ssh NAME` would: ~/.ssh/config, known_hosts (hashed too),
ssh-agent, encrypted keys, and ProxyJump chains, against real sshd servers."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.probe import SshProbe
from tests.harness.sshd import keygen
from tests.ssh.conftest import Secrets, host_for, known_hosts, make_probe

pytestmark = pytest.mark.sshd


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with an empty ~/.ssh, as HOME for the probe."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


def ssh_config_entry(alias: str, sshd, key: Path | None, extra: str = "") -> str:
    lines = [
        f"Host {alias}",
        f"  HostName {sshd.address}",
        f"  Port {sshd.port}",
        f"  User {sshd.world.user}",
    ]
    if key is not None:
        lines.append(f"  IdentityFile {key}")
    return "\n".join(lines) + "\n" + extra


def test_three_line_config_uses_ssh_config_and_hashed_known_hosts(sshd, world, home: Path) -> None:
    (home / ".ssh" / "config").write_text(
        ssh_config_entry("gpu-node1", sshd, world.client_key, "  ConnectTimeout 5\n")
    )
    known = home / ".ssh" / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    assert sshd.address not in known.read_text()  # really hashed
    probe = SshProbe(HostConfig("gpu-node1"), Secrets())  # everything else from ~/.ssh
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
    finally:
        probe.close()


def test_default_identity_with_passphrase_from_the_keyring(sshd, world, home: Path) -> None:
    key = keygen(home / ".ssh" / "id_ed25519", passphrase="open sesame")
    world.authorized_keys.write_text(
        world.authorized_keys.read_text() + Path(f"{key}.pub").read_text()
    )
    host = host_for(sshd, identity_file=None)
    secrets = Secrets(passphrases={str(key): "open sesame"})
    probe = make_probe(host, known_hosts(home, sshd), secrets)
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
    finally:
        probe.close()


def test_encrypted_key_without_passphrase_says_so(sshd, world, home: Path) -> None:
    key = keygen(home / "locked_key", passphrase="open sesame")
    host = host_for(sshd, identity_file=str(key), auth="key")
    probe = make_probe(host, known_hosts(home, sshd), Secrets())
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert snap.state is HostState.AUTH_FAILED
    assert snap.message == (
        f"Authentication failed for {world.user}@{sshd.address}:{sshd.port} (nothing to try): "
        "key ~/locked_key needs a passphrase and none is stored in the keyring"
    )


def test_wrong_passphrase_says_so(sshd, world, home: Path) -> None:
    key = keygen(home / "locked_key", passphrase="open sesame")
    host = host_for(sshd, identity_file=str(key), auth="key")
    secrets = Secrets(passphrases={str(key): "wrong"})
    probe = make_probe(host, known_hosts(home, sshd), secrets)
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert snap.state is HostState.AUTH_FAILED
    assert snap.message == (
        f"Authentication failed for {world.user}@{sshd.address}:{sshd.port} (nothing to try): "
        "the passphrase stored for key ~/locked_key is wrong"
    )


def test_key_the_server_does_not_accept(sshd, world, home: Path) -> None:
    stranger = keygen(home / "stranger")
    host = host_for(sshd, identity_file=str(stranger), auth="key")
    probe = make_probe(host, known_hosts(home, sshd), Secrets())
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (
        HostState.AUTH_FAILED,
        f"Authentication failed for {world.user}@{sshd.address}:{sshd.port} (tried key ~/stranger)",
    )


@pytest.fixture
def agent(world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(world.client_key)], env=env, check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait()


def test_agent_auth(sshd, world, agent: Path, home: Path) -> None:
    host = host_for(sshd, identity_file=None, auth="agent")
    probe = make_probe(host, known_hosts(home, sshd), Secrets())
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
    finally:
        probe.close()
    assert "Accepted publickey for gputray-tester-long" in sshd.log_text()


def _forwarded_to(jump, target) -> bool:
    pattern = rf"direct_tcpip.*target {re.escape(target.address)} port {target.port}"
    return re.search(pattern, jump.log_text()) is not None


def test_proxy_jump_one_hop_resolved_through_ssh_config(make_sshd, world, home: Path) -> None:
    jump = make_sshd(log_level="DEBUG1")
    target = make_sshd()
    (home / ".ssh" / "config").write_text(ssh_config_entry("bastion", jump, world.client_key))
    host = host_for(target, proxy_jump="bastion")
    probe = make_probe(host, known_hosts(home, jump, target), Secrets())
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
    finally:
        probe.close()
    assert _forwarded_to(jump, target)


def test_proxy_jump_two_hops(make_sshd, world, home: Path) -> None:
    a = make_sshd(log_level="DEBUG1")
    b = make_sshd(log_level="DEBUG1")
    target = make_sshd()
    (home / ".ssh" / "config").write_text(
        ssh_config_entry("hop-a", a, world.client_key)
        + ssh_config_entry("hop-b", b, world.client_key)
    )
    host = host_for(target, proxy_jump="hop-a,hop-b")
    probe = make_probe(host, known_hosts(home, a, b, target), Secrets())
    try:
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
    finally:
        probe.close()
    assert _forwarded_to(a, b) and _forwarded_to(b, target)
    assert not _forwarded_to(a, target)


def test_jump_host_with_an_unknown_key_is_rejected(make_sshd, world, home: Path) -> None:
    jump = make_sshd()
    target = make_sshd()
    (home / ".ssh" / "config").write_text(ssh_config_entry("bastion", jump, world.client_key))
    host = host_for(target, proxy_jump="bastion")
    probe = make_probe(host, known_hosts(home, target), Secrets())  # the jump is not trusted
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert snap.state is HostState.HOST_KEY_UNKNOWN
    assert snap.message == (
        f"Unknown host key for {jump.host_id}: ssh-ed25519 {jump.fingerprint}. "
        "Check the fingerprint, then trust it with `gpu-tray trust node`"
    )


def test_jump_host_cannot_reach_the_target(make_sshd, world, home: Path) -> None:
    from tests.harness.sshd import free_port

    jump = make_sshd()
    port = free_port("127.0.0.1")
    (home / ".ssh" / "config").write_text(ssh_config_entry("bastion", jump, world.client_key))
    host = HostConfig(
        "node", hostname="127.0.0.1", port=port, user=world.user, proxy_jump="bastion"
    )
    probe = make_probe(host, known_hosts(home, jump), Secrets())
    try:
        [snap] = probe.poll()
    finally:
        probe.close()
    assert (snap.state, snap.message) == (
        HostState.UNREACHABLE,
        f"Jump host bastion could not connect to 127.0.0.1:{port}: Connect failed",
    )


def test_proxy_command_is_refused_plainly(world, home: Path) -> None:
    (home / ".ssh" / "config").write_text("Host legacy\n  ProxyCommand nc %h %p\n")
    probe = SshProbe(HostConfig("legacy"), Secrets())
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.UNREACHABLE,
        f"{home}/.ssh/config, line 2: legacy uses ProxyCommand, which runs a shell command, "
        "and gpu-tray never runs shell commands; use ProxyJump instead",
    )
