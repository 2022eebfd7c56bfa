"""Fixtures for the credential tests: a real Secret Service, or none at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import keyring as harness


@pytest.fixture
def secret_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[harness.SecretService]:
    """gnome-keyring on a private bus; this process's D-Bus points at it."""
    if why := harness.available():
        pytest.skip(why)
    service = harness.start_secret_service(tmp_path / "secret-service")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
    try:
        yield service
    finally:
        service.bus.stop()


@pytest.fixture
def no_dbus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No session bus at all, as on a headless server or in a plain ssh login."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    run = tmp_path / "empty-run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    assert not os.path.exists(run / "bus")


# Real sshd hosts, shared with the SSH source's own tests.
from tests.ssh.conftest import make_sshd, sshd, world  # noqa: E402, F401
