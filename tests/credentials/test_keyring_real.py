"""The store against a real Secret Service (gnome-keyring on a private D-Bus),
against no D-Bus at all, a locked keyring, and a Secret Service that never answers."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import keyring
import pytest

from gpu_tray.credentials.keyring_store import (
    LOCKED_MESSAGE,
    NO_KEYRING_MESSAGE,
    KeyringState,
    SecretStore,
    timeout_message,
)
from tests.harness import keyring as harness

pytestmark = pytest.mark.keyring

SECRET = "pw-\u00e9t\u00e9 with spaces & $(quotes)'\""


def test_set_get_forget_through_the_real_secret_service(secret_service, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    store = SecretStore()
    status = store.status()
    assert (status.state, status.backend, status.message) == (
        KeyringState.OK,
        "SecretService Keyring",
        None,
    )
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.SecretService"

    result = store.set_password("a.very-long-username", "127.0.0.2", 2222, SECRET)
    assert (result.in_keyring, result.message) == (
        True,
        "Saved in the system keyring (SecretService Keyring).",
    )
    account = "a.very-long-username@127.0.0.2:2222"
    assert harness.stored_secret(secret_service.address, "gpu-tray", account) == SECRET
    # A fresh store (the next run of the app) finds it.
    assert SecretStore().password("a.very-long-username", "127.0.0.2", 2222) == SECRET

    store.set_passphrase("/keys/id_ed25519", "key secret")
    assert harness.stored_secret(secret_service.address, "gpu-tray", "key:/keys/id_ed25519") == (
        "key secret"
    )
    assert SecretStore().passphrase("/keys/id_ed25519") == "key secret"

    assert store.forget_password("a.very-long-username", "127.0.0.2", 2222) is True
    assert harness.stored_secret(secret_service.address, "gpu-tray", account) is None
    assert SecretStore().password("a.very-long-username", "127.0.0.2", 2222) is None
    assert store.forget_password("a.very-long-username", "127.0.0.2", 2222) is False
    assert SECRET not in caplog.text and "key secret" not in caplog.text


def test_no_dbus_gives_the_plain_message_and_session_only_secrets(no_dbus, caplog) -> None:
    caplog.set_level(logging.INFO)
    store = SecretStore()
    statuses = []
    store.on_status(statuses.append)
    status = store.status()
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.fail"
    assert status.state is KeyringState.NONE
    assert status.message == "No system keyring found: passwords will be kept for this session only"
    assert status.message == NO_KEYRING_MESSAGE
    assert [s.message for s in statuses] == [NO_KEYRING_MESSAGE]
    assert NO_KEYRING_MESSAGE in caplog.text  # logged once, with the backend's name
    assert "keyring backend: fail Keyring" in caplog.text

    result = store.set_password("alice", "node3", 22, SECRET)
    assert (result.in_keyring, result.message) == (False, NO_KEYRING_MESSAGE)
    assert store.password("alice", "node3", 22) == SECRET
    assert SecretStore().password("alice", "node3", 22) is None  # gone with the run


def test_locked_keyring_gives_its_message_and_does_not_hang(secret_service) -> None:
    SecretStore().set_password("alice", "node3", 22, SECRET)
    harness.lock_default_collection(secret_service.address)

    store = SecretStore(timeout_s=10)
    assert store.password("alice", "node3", 22) is None
    status = store.last_status
    assert (status.state, status.message) == (KeyringState.LOCKED, LOCKED_MESSAGE)
    assert status.message == (
        "The system keyring is locked: unlock it to use saved passwords; "
        "until then passwords will be kept for this session only"
    )
    result = store.set_password("alice", "node3", 22, "typed this session")
    assert (result.in_keyring, result.message) == (False, LOCKED_MESSAGE)
    assert store.password("alice", "node3", 22) == "typed this session"


def test_a_secret_service_that_never_answers_hits_the_timeout(tmp_path: Path, monkeypatch) -> None:
    if why := harness.available():
        pytest.skip(why)
    with harness.silent_secret_service(tmp_path) as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        store = SecretStore(timeout_s=1)
        answered = threading.Event()
        result: list[str | None] = []

        def lookup() -> None:
            result.append(store.password("alice", "node3", 22))
            answered.set()

        # On a thread, so a regression that hangs fails here instead of freezing the suite.
        threading.Thread(target=lookup, daemon=True).start()
        assert answered.wait(30), "the keyring lookup hung"
        assert result == [None]
        status = store.last_status
        assert (status.state, status.message) == (KeyringState.TIMEOUT, timeout_message(1))
        assert status.message == (
            "The system keyring did not answer within 1 s (is it waiting for an unlock prompt?): "
            "passwords will be kept for this session only"
        )
        saved = store.set_password("alice", "node3", 22, SECRET)
        assert (saved.in_keyring, saved.message) == (False, timeout_message(1))
        assert store.password("alice", "node3", 22) == SECRET
