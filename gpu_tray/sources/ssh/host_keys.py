"""Host-key checking as strict as OpenSSH's: known, unknown, or changed.

Keys are looked up in the user's known_hosts files (hashed entries too) and in
gpu-tray's own known_hosts, where "Trust" writes. An unknown key is never
accepted silently, and a changed one is refused with the file and line to fix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import paramiko
import platformdirs

from gpu_tray.core.models import HostKeyInfo

log = logging.getLogger(__name__)

APP = "gpu-tray"


def app_known_hosts_path() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / "known_hosts"


def user_known_hosts_files() -> list[Path]:
    """OpenSSH's defaults: ~/.ssh/known_hosts, ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts."""
    ssh = Path.home() / ".ssh"
    return [ssh / "known_hosts", ssh / "known_hosts2", Path("/etc/ssh/ssh_known_hosts")]


def fingerprint(key_blob: bytes) -> str:
    """`SHA256:` + unpadded base64, exactly what `ssh-keygen -lf` prints."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_info(host_id: str, key: paramiko.PKey) -> HostKeyInfo:
    return HostKeyInfo(
        host_id=host_id,
        key_type=key.get_name(),
        fingerprint=fingerprint(key.asbytes()),
        key_base64=key.get_base64(),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    patterns: tuple[str, ...]
    key_type: str
    blob: bytes
    file: Path
    line: int
    revoked: bool = False


class Verdict(Enum):
    TRUSTED = "trusted"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    info: HostKeyInfo  # the offered key; for CHANGED, with what we knew and where


# OpenSSH names RSA keys `ssh-rsa` in known_hosts but negotiates rsa-sha2-*.
_NEGOTIATED = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


class KnownHosts:
    """The trusted keys, read fresh on every check (files are small; users edit them)."""

    def __init__(self, files: Sequence[Path] | None = None, app_file: Path | None = None) -> None:
        self.app_file = app_file or app_known_hosts_path()
        self.files = [*(files if files is not None else user_known_hosts_files()), self.app_file]

    def _entries(self) -> list[_Entry]:
        out: list[_Entry] = []
        for path in self.files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            except OSError as exc:
                log.warning("cannot read %s: %s", path, exc)
                continue
            out.extend(_parse(text, path))
        return out

    def _for_host(self, host_id: str) -> list[_Entry]:
        return [e for e in self._entries() if _matches(host_id, e.patterns)]

    def known_types(self, host_id: str) -> list[str]:
        """Key types on file for this host, for ordering the host-key negotiation like ssh
        does: a server that has several keys is asked for the one we know."""
        types: list[str] = []
        for e in self._for_host(host_id):
            if e.revoked:
                continue
            for t in _NEGOTIATED.get(e.key_type, (e.key_type,)):
                if t not in types:
                    types.append(t)
        return types

    def check(self, host_id: str, key: paramiko.PKey) -> Check:
        offered = key_info(host_id, key)
        blob, key_type = key.asbytes(), key.get_name()
        entries = self._for_host(host_id)
        for e in entries:
            if e.revoked and e.blob == blob:
                return Check(Verdict.REVOKED, _with_known(offered, e))
        if any(not e.revoked and e.blob == blob for e in entries):
            return Check(Verdict.TRUSTED, offered)
        for e in entries:
            if not e.revoked and e.key_type == key_type:
                return Check(Verdict.CHANGED, _with_known(offered, e))
        return Check(Verdict.UNKNOWN, offered)


def _with_known(offered: HostKeyInfo, e: _Entry) -> HostKeyInfo:
    return HostKeyInfo(
        host_id=offered.host_id,
        key_type=offered.key_type,
        fingerprint=offered.fingerprint,
        key_base64=offered.key_base64,
        known_fingerprint=fingerprint(e.blob),
        known_file=str(e.file),
        known_line=e.line,
    )


def _parse(text: str, path: Path) -> Iterable[_Entry]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        revoked = False
        if fields[0].startswith("@"):
            if fields[0] != "@revoked":
                continue  # @cert-authority: certificates are not supported
            revoked = True
            fields = fields[1:]
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except ValueError:
            log.warning("%s, line %d: unreadable key, skipped", path, number)
            continue
        yield _Entry(tuple(fields[0].split(",")), fields[1], blob, path, number, revoked)


def _matches(host_id: str, patterns: Sequence[str]) -> bool:
    matched = False
    for pattern in patterns:
        if pattern.startswith("|1|"):
            if _hashed_match(host_id, pattern):
                matched = True
            continue
        negate = pattern.startswith("!")
        if _wildcard(pattern.lstrip("!")).fullmatch(host_id):
            if negate:
                return False
            matched = True
    return matched


def _wildcard(pattern: str) -> re.Pattern[str]:
    """known_hosts patterns: only `*` and `?` are special (`[host]:port` is literal)."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.IGNORECASE)


def _hashed_match(host_id: str, pattern: str) -> bool:
    try:
        _, _, salt64, hash64 = pattern.split("|")
        salt = base64.b64decode(salt64)
        expected = base64.b64decode(hash64)
    except ValueError:
        return False
    digest = hmac.new(salt, host_id.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(digest, expected)


def trust(info: HostKeyInfo, path: Path | None = None) -> Path:
    """Record `info`'s key for its host in gpu-tray's known_hosts. Returns the file."""
    path = path or app_known_hosts_path()
    line = f"{info.host_id} {info.key_type} {info.key_base64}\n"
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    if line in existing.splitlines(keepends=True):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(prefix + line)
    return path
