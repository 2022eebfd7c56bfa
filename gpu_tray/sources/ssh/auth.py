"""Authenticate a transport the way ssh does: agent, then key files, then a password.

Secrets come from the keyring through `SecretLookup`, on the worker thread.
Each method is tried at most once per connection, and a rejected password
or passphrase ends the attempt with `auth_failed`: the poller then waits for
the user instead of retrying (retrying gets accounts locked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    PasswordRequiredException,
    SSHException,
)

from gpu_tray.core.models import HostState
from gpu_tray.credentials.keyring_store import SecretRequest, mark_missing, mark_rejected
from gpu_tray.sources.base import SecretLookup
from gpu_tray.sources.ssh.errors import SshFailure
from gpu_tray.sources.ssh.target import SshTarget

log = logging.getLogger(__name__)


@dataclass
class _Attempt:
    target: SshTarget
    name: str  # the [[hosts]] entry, for "gpu-tray password set NAME" and reconnecting
    tried: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    allowed: list[str] | None = None  # None until the server has told us
    # Secrets that were missing or refused: told to the store (and so to the UI,
    # which asks the user once) only if authentication fails as a whole.
    missing: list[SecretRequest] = field(default_factory=list)
    refused: list[SecretRequest] = field(default_factory=list)

    def allows(self, method: str) -> bool:
        return self.allowed is None or method in self.allowed


def authenticate(
    transport: paramiko.Transport, target: SshTarget, secrets: SecretLookup, name: str
) -> None:
    """Raises SshFailure(AUTH_FAILED) with a message naming what was tried and why it failed."""
    a = _Attempt(target, name)
    try:
        transport.auth_none(target.user)
        return  # the server asked for nothing
    except BadAuthenticationType as exc:
        a.allowed = list(exc.allowed_types)
    except AuthenticationException:
        pass
    method = target.auth
    if method in (None, "agent") and not target.identities_only and _agent(transport, a):
        return
    if method in (None, "key") and _key_files(transport, a, secrets):
        return
    if method in (None, "password") and _password(transport, a, secrets):
        return
    for request in a.refused:
        mark_rejected(secrets, request)
    for request in a.missing:
        mark_missing(secrets, request)
    raise SshFailure(HostState.AUTH_FAILED, _failure_message(a))


def _done(transport: paramiko.Transport, remaining: list[str] | None, a: _Attempt) -> bool:
    """True once fully authenticated; a partial success narrows what is allowed next."""
    if transport.is_authenticated():
        return True
    if remaining:
        a.allowed = list(remaining)
    return False


def _agent(transport: paramiko.Transport, a: _Attempt) -> bool:
    if not a.allows("publickey"):
        return False
    try:
        agent = paramiko.Agent()
        keys = agent.get_keys()
    except (SSHException, OSError) as exc:
        log.debug("ssh-agent unavailable: %s", exc)
        return False
    if not keys:
        return False
    a.tried.append(f"agent ({len(keys)} key{'s' if len(keys) != 1 else ''})")
    return any(_offer(transport, key, a) for key in keys)


def _offer(transport: paramiko.Transport, key: paramiko.PKey, a: _Attempt) -> bool:
    try:
        return _done(transport, transport.auth_publickey(a.target.user, key), a)
    except AuthenticationException:
        return False


def _key_files(transport: paramiko.Transport, a: _Attempt, secrets: SecretLookup) -> bool:
    if not a.allows("publickey"):
        return False
    for path in a.target.identity_files:
        if not Path(path).is_file():
            if a.target.explicit_identities:
                a.problems.append(f"key {_short(path)} does not exist")
            continue
        key = _load_key(path, a, secrets)
        if key is None:
            continue
        a.tried.append(f"key {_short(path)}")
        if _offer(transport, key, a):
            return True
    return False


def _load_key(path: str, a: _Attempt, secrets: SecretLookup) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_path(path)
    except (PasswordRequiredException, TypeError):
        pass  # encrypted: needs its passphrase
    except (SSHException, ValueError, OSError) as exc:
        a.problems.append(f"key {_short(path)} is unreadable ({exc})")
        return None
    request = SecretRequest.for_passphrase(path, host_name=a.name)
    passphrase = secrets.passphrase(path)
    if passphrase is None:
        a.missing.append(request)
        a.problems.append(
            f"key {_short(path)} needs a passphrase and none is stored in the keyring"
        )
        return None
    try:
        return paramiko.PKey.from_path(path, password=passphrase.encode())
    except (SSHException, ValueError, TypeError) as exc:
        log.debug("passphrase rejected for %s: %s", path, type(exc).__name__)
        a.refused.append(request)
        a.problems.append(f"the passphrase stored for key {_short(path)} is wrong")
        return None


def _password(transport: paramiko.Transport, a: _Attempt, secrets: SecretLookup) -> bool:

    if not (a.allows("password") or a.allows("keyboard-interactive")):
        if a.target.auth == "password":
            a.problems.append("the server does not accept passwords")
        return False
    t = a.target
    request = SecretRequest.for_password(t.user, t.hostname, t.port, host_name=a.name)
    password = secrets.password(t.user, t.hostname, t.port)
    if password is None:
        a.missing.append(request)
        a.problems.append(f"no password is stored for {t.account}")
        return False
    a.tried.append("password from the keyring")
    try:
        # One attempt only (fallback=True tries keyboard-interactive solely when the
        # server refuses the "password" method outright, not after a wrong password).
        return _done(transport, transport.auth_password(t.user, password), a)
    except AuthenticationException:
        a.refused.append(request)
        a.problems.append(f"the server rejected the password stored for {t.account}")
        return False


def _failure_message(a: _Attempt) -> str:
    t = a.target
    parts = [f"Authentication failed for {t.account}"]
    parts.append(f"tried {', '.join(a.tried)}" if a.tried else "nothing to try")
    message = f"{parts[0]} ({parts[1]})"
    if a.problems:
        message += ": " + "; ".join(a.problems)
    if any("password" in p for p in a.problems):
        message += f". Set it with `gpu-tray password set {a.name}`"
    return message


def _short(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + "/") else path
