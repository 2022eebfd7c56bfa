"""The store's own logic, with in-memory stand-ins for keyring backends (unit tests).

The real Secret Service is in test_keyring_real.py.
"""

from __future__ import annotations

import logging
import os
import threading

import keyring.errors
import pytest

from gpu_tray.credentials.keyring_store import (
    LOCKED_MESSAGE,
    NO_KEYRING_MESSAGE,
    KeyringState,
    SecretRequest,
    SecretStore,
    error_message,
    mark_missing,
    mark_rejected,
    passphrase_account,
    password_account,
    timeout_message,
    usable_backend,
)
from gpu_tray.sources.base import NoSecrets, SecretLookup

SECRET = "correct horse battery staple"


class DictBackend:
    """Duck-typed like a keyring backend (not a subclass: that would register it with keyring)."""

    name = "dict Keyring"

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls += 1
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls += 1
        if (service, username) not in self.items:
            raise keyring.errors.PasswordDeleteError("No such password!")
        del self.items[(service, username)]


class RaisingBackend(DictBackend):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def get_password(self, *args: str) -> str | None:
        raise self.exc

    set_password = delete_password = get_password  # type: ignore[assignment]


class BlockingBackend(DictBackend):
    """A keyring stuck in an unlock prompt until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.entered.set()
        self.release.wait(30)
        return super().get_password(service, username)


def test_accounts_are_user_at_host_port_and_absolute_key_paths() -> None:
    assert password_account("alice", "node3.lab", 2222) == "alice@node3.lab:2222"
    assert passphrase_account("/k/id_ed25519") == "key:/k/id_ed25519"
    assert passphrase_account("~/.ssh/id_rsa") == "key:" + os.path.expanduser("~/.ssh/id_rsa")
    assert passphrase_account("rel/key") == "key:" + os.path.abspath("rel/key")


def test_store_is_a_secret_lookup_and_uses_service_gpu_tray() -> None:
    backend = DictBackend()
    store = SecretStore(backend)
    lookup: SecretLookup = store  # the type the SSH source takes
    assert callable(lookup.password) and callable(lookup.passphrase)
    assert store.status().state is KeyringState.OK
    assert store.status().backend == "dict Keyring"
    result = store.set_password("alice", "node3", 22, SECRET)
    assert result.in_keyring
    assert result.message == "Saved in the system keyring (dict Keyring)."
    assert backend.items == {("gpu-tray", "alice@node3:22"): SECRET}
    assert store.password("alice", "node3", 22) == SECRET
    assert store.password("alice", "node3", 2222) is None
    store.set_passphrase("~/.ssh/id_ed25519", "pp")
    assert backend.items[("gpu-tray", "key:" + os.path.expanduser("~/.ssh/id_ed25519"))] == "pp"
    assert store.passphrase(os.path.expanduser("~/.ssh/id_ed25519")) == "pp"
    assert store.forget_password("alice", "node3", 22) is True
    assert store.forget_password("alice", "node3", 22) is False
    assert store.password("alice", "node3", 22) is None
    # Other sources' secrets (a Prometheus token) live in the same service.
    backend.items[("gpu-tray", "prometheus-token:http://prom:9090")] = "tok"
    assert store.secret("prometheus-token", "http://prom:9090") == "tok"
    assert store.secret("prometheus-token", "http://other:9090") is None


@pytest.mark.parametrize("module", ["keyring.backends.fail", "keyring.backends.null"])
def test_fail_and_null_backends_mean_session_only(module: str) -> None:
    backend_type = type("Keyring", (DictBackend,), {"__module__": module, "name": "x Keyring"})
    backend = backend_type()
    statuses = []
    store = SecretStore(detect=lambda: backend)
    store.on_status(statuses.append)
    status = store.status()
    assert status.state is KeyringState.NONE
    assert status.message == "No system keyring found: passwords will be kept for this session only"
    assert status.message == NO_KEYRING_MESSAGE
    assert [s.state for s in statuses] == [KeyringState.NONE]
    result = store.set_password("bob", "h", 22, SECRET)
    assert not result.in_keyring
    assert result.message == NO_KEYRING_MESSAGE
    assert store.password("bob", "h", 22) == SECRET
    assert backend.calls == 0  # never asked again after the probe
    assert store.forget_password("bob", "h", 22) is True
    assert store.password("bob", "h", 22) is None


def test_a_plaintext_keyrings_alt_backend_nobody_chose_is_not_used(monkeypatch) -> None:
    alt = type("PlaintextKeyring", (DictBackend,), {"__module__": "keyrings.alt.file"})()
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setattr("keyring.core.load_config", lambda: None)
    assert not usable_backend(alt)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    assert usable_backend(alt)  # the user asked for it by name


def test_a_chainer_is_usable_when_any_link_is() -> None:
    fail = type("Keyring", (DictBackend,), {"__module__": "keyring.backends.fail"})()

    class Chainer:
        backends = (fail,)

    assert not usable_backend(Chainer())
    Chainer.backends = (fail, DictBackend())
    assert usable_backend(Chainer())


def test_locked_keyring_has_its_own_message_and_keeps_the_secret_for_the_session() -> None:
    store = SecretStore(RaisingBackend(keyring.errors.KeyringLocked("Failed to unlock")))
    assert store.password("a", "h", 22) is None
    assert store.last_status.state is KeyringState.LOCKED
    assert store.last_status.message == (
        "The system keyring is locked: unlock it to use saved passwords; "
        "until then passwords will be kept for this session only"
    )
    assert store.last_status.message == LOCKED_MESSAGE
    result = store.set_password("a", "h", 22, SECRET)
    assert (result.in_keyring, result.message) == (False, LOCKED_MESSAGE)
    assert store.password("a", "h", 22) == SECRET


def test_a_keyring_that_recovers_clears_the_message() -> None:
    backend = RaisingBackend(keyring.errors.KeyringLocked("Failed to unlock"))
    store = SecretStore(backend)
    seen: list[KeyringState] = []
    store.on_status(lambda s: seen.append(s.state))
    store.password("a", "h", 22)
    backend.get_password = DictBackend.get_password.__get__(backend)  # unlocked
    store.password("a", "h", 22)
    assert seen == [KeyringState.LOCKED, KeyringState.OK]
    assert store.last_status.message is None


def test_a_keyring_that_never_answers_times_out_and_later_calls_do_not_queue() -> None:
    backend = BlockingBackend()
    store = SecretStore(backend, timeout_s=0.2)
    assert store.password("a", "h", 22) is None
    assert backend.entered.is_set()
    assert store.last_status.state is KeyringState.TIMEOUT
    assert store.last_status.message == (
        "The system keyring did not answer within 0.2 s "
        "(is it waiting for an unlock prompt?): passwords will be kept for this session only"
    )
    assert store.last_status.message == timeout_message(0.2)
    # Still stuck: saving falls back to the session at once, and lookups find it there.
    result = store.set_password("a", "h", 22, SECRET)
    assert (result.in_keyring, result.message) == (False, timeout_message(0.2))
    assert store.password("a", "h", 22) == SECRET
    backend.release.set()


def test_a_probe_that_never_returns_times_out() -> None:
    release = threading.Event()

    def detect() -> DictBackend:
        release.wait(30)
        return DictBackend()

    store = SecretStore(detect=detect, timeout_s=0.2)
    assert store.status().state is KeyringState.TIMEOUT
    assert store.password("a", "h", 22) is None
    release.set()


def test_errors_name_the_problem_and_never_the_secret(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    store = SecretStore(RaisingBackend(RuntimeError(f"D-Bus said no to {SECRET}")))
    result = store.set_password("a", "h", 22, SECRET)
    assert not result.in_keyring
    assert result.message == error_message("RuntimeError: D-Bus said no to ***")
    assert store.last_status.message == (
        "The system keyring failed (RuntimeError: D-Bus said no to ***): "
        "passwords will be kept for this session only"
    )
    assert SECRET not in caplog.text
    assert SECRET not in repr(result)


def test_a_rejected_secret_is_not_offered_again_until_a_new_one_is_stored() -> None:
    backend = DictBackend()
    store = SecretStore(backend)
    requests: list[SecretRequest] = []
    store.on_request(requests.append)
    store.set_password("a", "h", 22, "wrong")
    assert store.password("a", "h", 22) == "wrong"
    store.mark_rejected(SecretRequest.for_password("a", "h", 22, host_name="node"))
    assert requests == [SecretRequest.for_password("a", "h", 22, host_name="node", rejected=True)]
    assert requests[0].what == "the password for a@h:22"
    assert store.password("a", "h", 22) is None  # the next poll does not reuse it
    # Another program (gpu-tray password set) stores a new one: that one is offered.
    backend.items[("gpu-tray", "a@h:22")] = "other"
    assert store.password("a", "h", 22) == "other"
    store.mark_rejected(SecretRequest.for_password("a", "h", 22))
    assert store.password("a", "h", 22) is None
    # Typed anew, even the same value is offered again: the user says it is right now.
    store.set_password("a", "h", 22, "other")
    assert store.password("a", "h", 22) == "other"


def test_a_rejected_session_secret_is_dropped() -> None:
    store = SecretStore(detect=lambda: type("K", (), {"__module__": "keyring.backends.fail"})())
    store.set_passphrase("/k", "pp")
    assert store.passphrase("/k") == "pp"
    store.mark_rejected(SecretRequest.for_passphrase("/k"))
    assert store.passphrase("/k") is None


def test_missing_secrets_are_announced_and_helpers_accept_any_lookup() -> None:
    store = SecretStore(DictBackend())
    requests: list[SecretRequest] = []
    store.on_request(requests.append)
    mark_missing(store, SecretRequest.for_passphrase("/k/id", host_name="n"))
    assert requests == [SecretRequest("passphrase", "n", key_path="/k/id")]
    assert requests[0].what == "the passphrase of /k/id"
    mark_rejected(NoSecrets(), SecretRequest.for_password("a", "h", 22))  # no-op, no error
    mark_missing(NoSecrets(), SecretRequest.for_password("a", "h", 22))


def test_a_failing_listener_does_not_break_the_store(caplog) -> None:
    store = SecretStore(DictBackend())

    def boom(_: object) -> None:
        raise ValueError("listener bug")

    store.on_request(boom)
    store.mark_missing(SecretRequest.for_password("a", "h", 22))
    assert "secret request listener failed" in caplog.text
