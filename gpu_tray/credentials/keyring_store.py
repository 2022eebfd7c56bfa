"""Passwords and key passphrases in the OS keyring (service "gpu-tray"). Qt-free.

The SSH source asks `SecretStore.password(user, host, port)` and
`SecretStore.passphrase(key_path)` (the `SecretLookup` protocol) from its
worker threads. The settings dialog, the password prompt and `gpu-tray
password` store secrets with `set_password`/`set_passphrase`, from worker
threads too: every method here may block for up to `timeout_s`.

Accounts: `user@host:port` for a password, `key:/absolute/path` for a key
passphrase.

Why the machinery:
- A locked collection can block forever in an unlock prompt, so every keyring
  call runs on one daemon thread of our own and the caller stops waiting after
  `timeout_s`. A daemon thread, because a call stuck in a prompt must not keep
  the app from exiting (an executor's threads would).
- Without a usable keyring (the `fail` or `null` backend, no D-Bus, a locked
  or silent keyring) secrets are kept in memory for this run only, and the
  status says so in one plain line.
- A plaintext keyrings.alt backend that keyring picked by itself is not used:
  secrets go to a real keyring or nowhere on disk.
- A secret the server refused is not offered again (the SSH source calls
  `mark_rejected`), and the UI is told so it can ask the user once.

No secret ever reaches a log line, an exception message or a result object.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import secrets as _random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

log = logging.getLogger(__name__)

SERVICE = "gpu-tray"
DEFAULT_TIMEOUT_S = 5.0

_SESSION_ONLY = "passwords will be kept for this session only"
NO_KEYRING_MESSAGE = f"No system keyring found: {_SESSION_ONLY}"
LOCKED_MESSAGE = (
    "The system keyring is locked: unlock it to use saved passwords; "
    "until then passwords will be kept for this session only"
)


def timeout_message(timeout_s: float) -> str:
    return (
        f"The system keyring did not answer within {timeout_s:g} s "
        f"(is it waiting for an unlock prompt?): {_SESSION_ONLY}"
    )


def error_message(detail: str) -> str:
    return f"The system keyring failed ({detail}): {_SESSION_ONLY}"


def password_account(user: str, host: str, port: int) -> str:
    return f"{user}@{host}:{port}"


def passphrase_account(key_path: str) -> str:
    return "key:" + os.path.abspath(os.path.expanduser(key_path))


class KeyringState(StrEnum):
    UNKNOWN = "unknown"  # not probed yet
    OK = "ok"
    NONE = "none"  # no usable backend: session only for the whole run
    LOCKED = "locked"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    state: KeyringState
    backend: str  # "SecretService Keyring", "fail Keyring", "" before the probe
    message: str | None  # one line for the user; None when all is well

    @property
    def persistent(self) -> bool:
        """True when a secret saved now outlives this run."""
        return self.state is KeyringState.OK


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """A secret the SSH source needed: none was stored, or the server refused it.

    Carries what is needed to store the answer under the account the next
    lookup will use, and the [[hosts]] name to reconnect afterwards. Never the
    secret itself.
    """

    kind: Literal["password", "passphrase"]
    host_name: str | None = None  # the [[hosts]] entry to reconnect once answered
    user: str = ""
    host: str = ""
    port: int = 22
    key_path: str = ""
    rejected: bool = False  # True: the server refused the secret we offered

    @classmethod
    def for_password(
        cls, user: str, host: str, port: int, host_name: str | None = None, rejected: bool = False
    ) -> SecretRequest:
        return cls("password", host_name, user, host, port, rejected=rejected)

    @classmethod
    def for_passphrase(
        cls, key_path: str, host_name: str | None = None, rejected: bool = False
    ) -> SecretRequest:
        return cls("passphrase", host_name, key_path=key_path, rejected=rejected)

    @property
    def account(self) -> str:
        if self.kind == "password":
            return password_account(self.user, self.host, self.port)
        return passphrase_account(self.key_path)

    @property
    def what(self) -> str:
        """'the password for alice@node3:22' / 'the passphrase of /home/a/.ssh/id_ed25519'."""
        if self.kind == "password":
            return f"the password for {self.account}"
        return f"the passphrase of {self.account.removeprefix('key:')}"


@dataclass(frozen=True, slots=True)
class SaveResult:
    in_keyring: bool  # False: kept in memory for this run only
    message: str  # one line for the user


StatusListener = Callable[[KeyringStatus], None]
RequestListener = Callable[[SecretRequest], None]


class KeyringTimeout(Exception):
    """A keyring call did not finish in time (it may still be running)."""


class _Job:
    __slots__ = ("cancelled", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None


class _KeyringThread:
    """Runs keyring calls one at a time on a daemon thread; callers wait with a deadline."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None

    def call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        with self._lock:
            busy = self._busy_since
            if busy is not None and time.monotonic() - busy > timeout_s:
                # Still stuck in an earlier call (an unlock prompt nobody answers):
                # fail now instead of queueing behind it.
                raise KeyringTimeout
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="keyring", daemon=True)
                self._thread.start()
        job = _Job(fn)
        self._jobs.put(job)
        if not job.done.wait(timeout_s):
            job.cancelled = True
            raise KeyringTimeout
        if job.error is not None:
            raise job.error
        return job.result

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job.cancelled:
                continue
            with self._lock:
                self._busy_since = time.monotonic()
            try:
                job.result = job.fn()
            except BaseException as exc:
                job.error = exc
            finally:
                with self._lock:
                    self._busy_since = None
                job.done.set()


def detect_backend() -> Any:
    """keyring's own choice of backend, detected afresh (keyring caches it per process)."""
    import keyring
    import keyring.backend
    import keyring.core

    # jaraco's `once`: reset() raises KeyError before the first call.
    with contextlib.suppress(AttributeError, KeyError):
        keyring.backend.get_all_keyring.reset()
    keyring.core.init_backend()
    return keyring.get_keyring()


def backend_name(backend: Any) -> str:
    name = getattr(type(backend), "name", None)
    return name if isinstance(name, str) else type(backend).__name__


def usable_backend(backend: Any) -> bool:
    """False for keyring's `fail` and `null` backends, and for a plaintext keyrings.alt
    backend that nobody chose on purpose (keyring picks one silently when installed)."""
    inner = getattr(backend, "backends", None)
    if isinstance(inner, list | tuple):  # the chainer: usable if any link is
        return any(usable_backend(b) for b in inner)
    module = type(backend).__module__
    if module in ("keyring.backends.fail", "keyring.backends.null"):
        return False
    if module.startswith("keyrings.alt"):
        return _chosen_on_purpose()
    return True


def _chosen_on_purpose() -> bool:
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        import keyring.core

        return keyring.core.load_config() is not None
    except Exception:
        return False


def _describe(exc: BaseException, secret: str | None = None) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text[:200]


class SecretStore:
    """The keyring-backed store. Implements `SecretLookup` for the SSH source.

    `backend` is for tests; by default keyring's own choice is probed once,
    on the keyring thread, the first time anything needs it.
    """

    def __init__(
        self,
        backend: Any = None,
        *,
        detect: Callable[[], Any] = detect_backend,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        service: str = SERVICE,
    ) -> None:
        self.timeout_s = timeout_s
        self.service = service
        self._detect = detect
        self._backend = backend
        self._probed = backend is not None
        self._thread = _KeyringThread()
        self._lock = threading.Lock()
        self._status = KeyringStatus(KeyringState.UNKNOWN, "", None)
        self._session: dict[str, str] = {}
        # account -> keyed hash of the value the server refused; a value that
        # hashes the same is not offered again, a new one (typed anew) is.
        self._rejected: dict[str, bytes] = {}
        self._offered: dict[str, bytes] = {}
        self._salt = _random.token_bytes(16)
        self._status_listeners: list[StatusListener] = []
        self._request_listeners: list[RequestListener] = []
        if backend is not None:
            self._accept_backend(backend)

    # -- SecretLookup (worker threads) ----------------------------------------------------

    def password(self, user: str, host: str, port: int) -> str | None:
        return self._lookup(password_account(user, host, port))

    def passphrase(self, key_path: str) -> str | None:
        return self._lookup(passphrase_account(key_path))

    def secret(self, kind: str, account: str) -> str | None:
        """Other sources' secrets, e.g. a Prometheus token: account `KIND:ACCOUNT`."""
        return self._lookup(f"{kind}:{account}")

    # -- storing (worker threads; blocks up to timeout_s) ---------------------------------

    def set_password(self, user: str, host: str, port: int, secret: str) -> SaveResult:
        return self.set_secret(SecretRequest.for_password(user, host, port), secret)

    def set_passphrase(self, key_path: str, secret: str) -> SaveResult:
        return self.set_secret(SecretRequest.for_passphrase(key_path), secret)

    def forget_password(self, user: str, host: str, port: int) -> bool:
        return self.forget(SecretRequest.for_password(user, host, port))

    def forget_passphrase(self, key_path: str) -> bool:
        return self.forget(SecretRequest.for_passphrase(key_path))

    def set_secret(self, request: SecretRequest, secret: str) -> SaveResult:
        """Store the answer to `request` (or any password/passphrase it names)."""
        return self.set_account(request.account, secret, request.what)

    def forget(self, request: SecretRequest) -> bool:
        """Remove the secret `request` names, from the keyring and from this session.
        True when there was one."""
        return self.forget_account(request.account, request.what)

    def set_account(self, account: str, secret: str, what: str) -> SaveResult:
        """Store `secret` under `account` (e.g. `channel:NAME`); `what` names it in the log
        ("the URL of channel lab-slack"), never the secret itself."""
        with self._lock:
            self._rejected.pop(account, None)
        backend = self._usable()
        if backend is not None:
            try:
                self._thread.call(
                    lambda: backend.set_password(self.service, account, secret), self.timeout_s
                )
            except Exception as exc:
                self._failed(exc, secret)
            else:
                self._succeeded()
                with self._lock:
                    self._session.pop(account, None)
                log.info("saved %s in the keyring", what)
                return SaveResult(True, f"Saved in the system keyring ({self._status.backend}).")
        with self._lock:
            self._session[account] = secret
        log.info("keeping %s for this session only", what)
        return SaveResult(False, self._status.message or NO_KEYRING_MESSAGE)

    def forget_account(self, account: str, what: str) -> bool:
        """Remove the secret under `account`, from the keyring and from this session.
        True when there was one."""
        with self._lock:
            had = self._session.pop(account, None) is not None
            self._rejected.pop(account, None)
            self._offered.pop(account, None)
        backend = self._usable()
        if backend is None:
            return had

        def delete() -> bool:
            import keyring.errors

            if backend.get_password(self.service, account) is None:
                return False
            try:
                backend.delete_password(self.service, account)
            except keyring.errors.PasswordDeleteError:
                return False
            return True

        try:
            removed = bool(self._thread.call(delete, self.timeout_s))
        except Exception as exc:
            self._failed(exc)
            return had
        self._succeeded()
        if removed:
            log.info("forgot %s", what)
        return had or removed

    # -- the SSH source says a secret was wrong or missing (worker threads) ---------------

    def mark_rejected(self, request: SecretRequest) -> None:
        """The server refused the secret last returned for `request.account`.

        That value is not returned again (a value stored anew is), and the
        request listeners are told, so the UI can ask the user once.
        """
        account = request.account
        with self._lock:
            offered = self._offered.get(account)
            if offered is not None:
                self._rejected[account] = offered
            self._session.pop(account, None)
        log.info("%s was refused", request.what)
        self._announce(request if request.rejected else _with_rejected(request))

    def mark_missing(self, request: SecretRequest) -> None:
        """Authentication needed a secret that is not stored: tell the listeners."""
        log.info("%s is needed and not stored", request.what)
        self._announce(request)

    # -- status and listeners -------------------------------------------------------------

    def status(self) -> KeyringStatus:
        """The keyring's state. The first call probes it (blocks up to timeout_s)."""
        self._usable()
        return self._status

    @property
    def last_status(self) -> KeyringStatus:
        """The state as last seen, without probing (safe on the GUI thread)."""
        return self._status

    def start_probe(self) -> None:
        """Probe the keyring in the background; status listeners hear the result."""
        threading.Thread(target=self.status, name="keyring-probe", daemon=True).start()

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Called (on a worker thread) whenever the state changes, e.g. to show the
        no-keyring message once. Returns a function that unsubscribes."""
        self._status_listeners.append(listener)
        return lambda: _discard(self._status_listeners, listener)

    def on_request(self, listener: RequestListener) -> Callable[[], None]:
        """Called (on a worker thread) when the SSH source needs a secret from the user.
        Returns a function that unsubscribes."""
        self._request_listeners.append(listener)
        return lambda: _discard(self._request_listeners, listener)

    # -- internals ------------------------------------------------------------------------

    def _digest(self, value: str) -> bytes:
        return hashlib.blake2b(value.encode(), key=self._salt, digest_size=16).digest()

    def _lookup(self, account: str) -> str | None:
        with self._lock:
            value = self._session.get(account)
        if value is None:
            backend = self._usable()
            if backend is not None:
                try:
                    value = self._thread.call(
                        lambda: backend.get_password(self.service, account), self.timeout_s
                    )
                except Exception as exc:
                    self._failed(exc)
                    value = None
                else:
                    self._succeeded()
        if value is None:
            return None
        digest = self._digest(value)
        with self._lock:
            if self._rejected.get(account) == digest:
                return None
            self._offered[account] = digest
        return value

    def _usable(self) -> Any:
        """The backend to call, probing it the first time; None for session only."""
        if not self._probed:
            self._probe()
        with self._lock:
            if self._status.state is KeyringState.NONE:
                return None
            return self._backend

    def _probe(self) -> None:
        def probe() -> None:
            backend = self._detect()
            # Stored even when the caller stopped waiting: a late answer still counts.
            self._backend = backend
            self._probed = True
            self._accept_backend(backend)

        try:
            self._thread.call(probe, self.timeout_s)
        except Exception as exc:
            self._failed(exc)

    def _accept_backend(self, backend: Any) -> None:
        name = backend_name(backend)
        if usable_backend(backend):
            log.info("keyring backend: %s", name)
            self._set_status(KeyringStatus(KeyringState.OK, name, None))
        else:
            # Normal on a headless machine: the UI shows the message, the log just notes it.
            log.info("keyring backend: %s. %s", name, NO_KEYRING_MESSAGE)
            self._set_status(KeyringStatus(KeyringState.NONE, name, NO_KEYRING_MESSAGE))

    def _succeeded(self) -> None:
        if self._status.state is not KeyringState.OK:
            self._set_status(KeyringStatus(KeyringState.OK, self._status.backend, None))

    def _failed(self, exc: BaseException, secret: str | None = None) -> None:
        import keyring.errors

        backend = self._status.backend
        if isinstance(exc, KeyringTimeout):
            status = KeyringStatus(KeyringState.TIMEOUT, backend, timeout_message(self.timeout_s))
        elif isinstance(exc, keyring.errors.KeyringLocked):
            status = KeyringStatus(KeyringState.LOCKED, backend, LOCKED_MESSAGE)
        elif isinstance(exc, keyring.errors.NoKeyringError):
            status = KeyringStatus(KeyringState.NONE, backend, NO_KEYRING_MESSAGE)
        else:
            status = KeyringStatus(
                KeyringState.ERROR, backend, error_message(_describe(exc, secret))
            )
        self._set_status(status)

    def _set_status(self, status: KeyringStatus) -> None:
        with self._lock:
            changed = status != self._status
            self._status = status
        if not changed:
            return
        if status.message and status.state is not KeyringState.NONE:
            log.warning("%s", status.message)
        for listener in list(self._status_listeners):
            try:
                listener(status)
            except Exception:
                log.exception("keyring status listener failed")

    def _announce(self, request: SecretRequest) -> None:
        for listener in list(self._request_listeners):
            try:
                listener(request)
            except Exception:
                log.exception("secret request listener failed")


def _discard(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)


def _with_rejected(request: SecretRequest) -> SecretRequest:
    from dataclasses import replace

    return replace(request, rejected=True)


_default: SecretStore | None = None
_default_lock = threading.Lock()


def default_store() -> SecretStore:
    """The process-wide store: the tray, the settings dialog and the SSH source share
    session secrets and refusals through it."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SecretStore()
        return _default


def mark_rejected(lookup: object, request: SecretRequest) -> None:
    """For the SSH source: `lookup.mark_rejected(request)` when the lookup supports it
    (a `SecretStore`), nothing otherwise (`NoSecrets` in tests)."""
    method = getattr(lookup, "mark_rejected", None)
    if callable(method):
        method(request)


def mark_missing(lookup: object, request: SecretRequest) -> None:
    method = getattr(lookup, "mark_missing", None)
    if callable(method):
        method(request)
