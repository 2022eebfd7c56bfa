"""Secrets on macOS and Windows go to keyring's native backends (Keychain, Windows
Credential Locker). Their classes import on any machine; what is checked here is that
our store accepts them as real keyrings, as it refuses keyrings.alt's plaintext files.
They have not been used on a real Mac or Windows machine."""

from __future__ import annotations

import pytest
from keyring.backends import Windows, macOS

from gpu_tray.credentials.keyring_store import KeyringState, SecretStore, usable_backend


class Remembering:
    """Stands in for the native API underneath: what a real Keychain call would store."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, account: str) -> str | None:
        return self.items.get((service, account))

    def set_password(self, service: str, account: str, secret: str) -> None:
        self.items[(service, account)] = secret


@pytest.mark.parametrize("backend", [macOS.Keyring, Windows.WinVaultKeyring])
def test_the_native_backends_are_usable_keyrings(backend: type) -> None:
    assert usable_backend(backend())


@pytest.mark.parametrize(
    ("backend", "name"),
    [(macOS.Keyring, "macOS Keyring"), (Windows.WinVaultKeyring, "Windows WinVaultKeyring")],
)
def test_the_store_keeps_secrets_in_a_native_backend(backend: type, name: str, monkeypatch) -> None:
    native = backend()
    remembered = Remembering()
    monkeypatch.setattr(native, "get_password", remembered.get_password)
    monkeypatch.setattr(native, "set_password", remembered.set_password)
    store = SecretStore(backend=native)
    assert store.status().state is KeyringState.OK
    assert store.status().backend == name
    assert store.status().message is None
    saved = store.set_password("alice", "node3", 22, "s3cret")
    assert saved.in_keyring
    assert saved.message == f"Saved in the system keyring ({name})."
    assert remembered.items == {("gpu-tray", "alice@node3:22"): "s3cret"}
    assert store.password("alice", "node3", 22) == "s3cret"
