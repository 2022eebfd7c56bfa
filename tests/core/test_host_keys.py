"""known_hosts matching: plain, [host]:port, hashed, wildcards, negation, @revoked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import paramiko
import pytest

from gpu_tray.sources.ssh.host_keys import KnownHosts, Verdict, fingerprint, trust


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[paramiko.PKey, paramiko.PKey, Path]:
    d = tmp_path_factory.mktemp("keys")
    for name in ("a", "b"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    return paramiko.PKey.from_path(d / "a"), paramiko.PKey.from_path(d / "b"), d


def line(host: str, key: paramiko.PKey) -> str:
    return f"{host} {key.get_name()} {key.get_base64()}\n"


def known(tmp_path: Path, text: str) -> KnownHosts:
    f = tmp_path / "known_hosts"
    f.write_text(text)
    return KnownHosts([f], app_file=tmp_path / "app")


def hashed(host: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_fingerprint_matches_ssh_keygen(keys) -> None:
    a, _, d = keys
    out = subprocess.run(["ssh-keygen", "-lf", str(d / "a.pub")], capture_output=True, text=True)
    assert fingerprint(a.asbytes()) == out.stdout.split()[1]


def test_trusted_unknown_changed(keys, tmp_path: Path) -> None:
    a, b, _ = keys
    kh = known(tmp_path, "# comment\n\n" + line("node1,10.0.0.1", a) + line("[node2]:2222", a))
    assert kh.check("node1", a).verdict is Verdict.TRUSTED
    assert kh.check("10.0.0.1", a).verdict is Verdict.TRUSTED
    assert kh.check("[node2]:2222", a).verdict is Verdict.TRUSTED
    assert kh.check("node2", a).verdict is Verdict.UNKNOWN  # port 22 is another host id
    changed = kh.check("node1", b)
    assert changed.verdict is Verdict.CHANGED
    assert (changed.info.known_file, changed.info.known_line) == (str(tmp_path / "known_hosts"), 3)
    assert changed.info.known_fingerprint == fingerprint(a.asbytes())
    assert changed.info.fingerprint == fingerprint(b.asbytes())


def test_hashed_entries(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, line(hashed("[10.0.0.5]:2222"), a))
    assert kh.check("[10.0.0.5]:2222", a).verdict is Verdict.TRUSTED
    assert kh.check("10.0.0.5", a).verdict is Verdict.UNKNOWN


def test_wildcards_and_negation(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, line("*.lab,!evil.lab", a))
    assert kh.check("gpu1.lab", a).verdict is Verdict.TRUSTED
    assert kh.check("evil.lab", a).verdict is Verdict.UNKNOWN


def test_revoked_key_is_refused(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, line("node1", a) + "@revoked " + line("node1", a))
    assert kh.check("node1", a).verdict is Verdict.REVOKED


def test_known_types_order_negotiation(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, line("node1", a) + "node1 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7\n")
    assert kh.known_types("node1") == ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]
    assert kh.known_types("other") == []


def test_unreadable_lines_are_skipped(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, "garbage\nnode1 ssh-ed25519 !!!notbase64\n" + line("node1", a))
    assert kh.check("node1", a).verdict is Verdict.TRUSTED


def test_trust_appends_once(keys, tmp_path: Path) -> None:
    a, _, _ = keys
    kh = known(tmp_path, "")
    info = kh.check("[n]:2", a).info
    path = tmp_path / "sub" / "known_hosts"
    trust(info, path)
    trust(info, path)
    assert path.read_text() == line("[n]:2", a)
    assert KnownHosts([], app_file=path).check("[n]:2", a).verdict is Verdict.TRUSTED
