"""Fixtures for the SSH tests: real sshd instances on 127.0.0.N, and a client set up
the way a user's machine is (known_hosts, ~/.ssh/config)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.ssh.host_keys import KnownHosts
from gpu_tray.sources.ssh.probe import SshProbe
from gpu_tray.sources.ssh.session import SshSession
from gpu_tray.sources.ssh.ssh_config import SshConfig
from tests.harness.sshd import Sshd, SshWorld, make_world

_addresses = itertools.cycle(range(2, 250))


def next_address() -> str:
    return f"127.0.0.{next(_addresses)}"


@pytest.fixture(scope="session")
def world() -> SshWorld:
    return make_world()


@pytest.fixture
def make_sshd(world: SshWorld) -> Iterator:
    started: list[Sshd] = []

    def make(**kw) -> Sshd:
        s = Sshd(world, address=kw.pop("address", None) or next_address(), **kw)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def sshd(make_sshd) -> Sshd:
    return make_sshd()


def host_for(sshd: Sshd, name: str = "node", **kw) -> HostConfig:
    """A [[hosts]] entry that reaches `sshd` with the test user's key."""
    kw.setdefault("identity_file", str(sshd.world.client_key))
    kw.setdefault("user", sshd.world.user)
    return HostConfig(name=name, hostname=sshd.address, port=sshd.port, **kw)


def known_hosts(tmp_path: Path, *servers: Sshd) -> KnownHosts:
    """A known_hosts that trusts `servers`, plus an empty app file for Trust to write."""
    f = tmp_path / "known_hosts"
    f.write_text("".join(s.known_hosts_line() for s in servers))
    return KnownHosts(files=[f], app_file=tmp_path / "app_known_hosts")


class Secrets:
    """Stands in for the keyring (tested for real in tests/credentials) and counts lookups."""

    def __init__(self, password: str | None = None, passphrases: dict[str, str] | None = None):
        self._password = password
        self._passphrases = passphrases or {}
        self.password_lookups: list[tuple[str, str, int]] = []

    def password(self, user: str, host: str, port: int) -> str | None:
        self.password_lookups.append((user, host, port))
        return self._password

    def passphrase(self, key_path: str) -> str | None:
        return self._passphrases.get(key_path)


def make_probe(
    host: HostConfig,
    known: KnownHosts,
    secrets=None,
    ssh_config_text: str | None = None,
    command_timeout_s: float = 30.0,
) -> SshProbe:
    secrets = secrets or NoSecrets()
    ssh_config = SshConfig.from_text(ssh_config_text) if ssh_config_text else None
    session = SshSession(host, secrets, known_hosts=known, ssh_config=ssh_config)
    return SshProbe(host, secrets, session=session, command_timeout_s=command_timeout_s)


@pytest.fixture
def probes() -> Iterator[list[SshProbe]]:
    """Probes made by a test, closed after it."""
    made: list[SshProbe] = []
    yield made
    for p in made:
        p.close()
