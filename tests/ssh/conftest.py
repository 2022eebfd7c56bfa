"""Fixtures for the SSH tests: real sshd instances on 127.0.0.N, and a client set up
the way a user's machine is (known_hosts, ~/.ssh/config)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.host_keys import KnownHosts
from tests.harness.sshd import Sshd, SshWorld, make_world

pytestmark = pytest.mark.sshd

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
