"""Fuzzing the readers of ssh_config and known_hosts with Hypothesis, on inputs mutated
from real-looking files: ssh_config may only raise TargetError (a message with file and
line, for people), known_hosts nothing at all (a bad line is skipped).

The default run tries a few hundred inputs per reader; `-m slow` runs 10,000 each,
derandomized (the same inputs every run), without a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import paramiko
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.host_keys import KnownHosts
from gpu_tray.sources.ssh.ssh_config import SshConfig
from gpu_tray.sources.ssh.target import TargetError, resolve
from tests.core.ssh_config_corpus import CASES

DEFAULT_EXAMPLES = 300
SLOW_EXAMPLES = 10_000

# Seeds: every file of the differential corpus, and the shapes of real files.
SSH_SEEDS = [
    *sorted({text for _, files, _ in CASES for text in files.values()}),
    "Match exec \"nc -z %h 22\" host gpu*\n  User x\n",
    "Host gpu1\n  ProxyCommand ssh -W %h:%p bastion\n",
    "Host *\n  IdentityFile ~/.ssh/id_%r@%h-%p\n  UserKnownHostsFile %d/.ssh/kh_%C ${HOME}/kh\n"
    "  ConnectTimeout 1m30s\n  HostKeyAlias %n\n  CanonicalizeHostname yes\n",
]
SSH_WORDS = [
    "Host", "Match", "Include", "HostName", "User", "Port", "ProxyJump", "ProxyCommand",
    "IdentityFile", "UserKnownHostsFile", "ConnectTimeout", "HostKeyAlias", "IdentitiesOnly",
    "CanonicalizeHostname", "all", "canonical", "final", "exec", "host", "originalhost", "user",
    "localuser", "none", "conf.d/*", "~/", "%h", "%%", "%", "${HOME}", "${", "\"", "'", "\\",
    "#", "=", ",", "!", "*", "?", "[::1]:22", "a@b:2222", "ssh://", "\t", "\r", "\n", " ",
    "65536", "0", "-1", "1m", "é", "\x00",
]  # fmt: skip
NAMES = ["gpu1", "gpu7", "GPU1", "short", "alias", "target", "bastion", "a", "x.lab", ""]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str], words: list[str]) -> str:
    """A seed with a few edits: a slice deleted, words or characters inserted, a line
    duplicated, or two lines swapped."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["delete", "word", "chars", "dup", "swap"]))
        at = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif kind == "word":
            text = text[:at] + draw(st.sampled_from(words)) + text[at:]
        elif kind == "chars":
            text = text[:at] + draw(st.text(max_size=8)) + text[at:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "dup":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with included files for the seeds to find; HOME points at it while the
    module runs (set by hand: Hypothesis re-runs the test body, not the fixtures)."""
    home = tmp_path_factory.mktemp("fuzz") / "home"
    for _, files, _ in CASES:
        for rel, text in files.items():
            if rel != "config":
                path = (home / ".ssh" / rel).resolve()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text.replace("{home}", str(home)))
    old = {k: os.environ.get(k) for k in ("HOME", "USER", "LOGNAME")}
    os.environ.update(HOME=str(home), USER="alice", LOGNAME="alice")
    yield home
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def check_ssh_config(text: str, name: str, toml_user: str | None) -> None:
    config = SshConfig.from_text(text, name="fuzz_config")
    try:
        target = resolve(HostConfig(name or "gpu1", user=toml_user), config)
    except TargetError as exc:
        assert str(exc).strip() and "\n" not in str(exc)  # one line for people
    else:
        assert 0 < target.port < 65536
        assert target.hostname == target.hostname.lower() or not target.hostname.isascii()
    with contextlib.suppress(TargetError):
        config.host_names()


def _settings(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip


SSH_INPUT = (
    mutated(SSH_SEEDS, SSH_WORDS),
    st.one_of(st.sampled_from(NAMES), st.text(max_size=12)),
    st.one_of(st.none(), st.sampled_from(["bob", "%u", "a b"])),
)


@_settings(DEFAULT_EXAMPLES)
@given(*SSH_INPUT)
def test_ssh_config_raises_only_target_error(fuzz_home, text, name, toml_user) -> None:
    check_ssh_config(text, name, toml_user)


@pytest.mark.slow
@_settings(SLOW_EXAMPLES)
@given(*SSH_INPUT)
def test_ssh_config_raises_only_target_error_10k(fuzz_home, text, name, toml_user) -> None:
    check_ssh_config(text, name, toml_user)


# -- known_hosts ---------------------------------------------------------------------------


def _make_key(tmp: Path, name: str) -> paramiko.PKey:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)],
                   check=True)  # fmt: skip
    return paramiko.PKey.from_path(tmp / name)


@pytest.fixture(scope="module")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("keys")
    a, b = _make_key(d, "a"), _make_key(d, "b")
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"[10.0.0.5]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    seed = (
        "# known hosts\n"
        f"node1,10.0.0.1 {a.get_name()} {a.get_base64()}\n"
        f"[node2]:2222 {a.get_name()} {a.get_base64()}\n"
        f"{hashed} {b.get_name()} {b.get_base64()}\n"
        f"*.lab,!evil.lab {a.get_name()} {a.get_base64()}\n"
        f"@revoked node3 {b.get_name()} {b.get_base64()}\n"
        f"@cert-authority *.example {a.get_name()} {a.get_base64()}\n"
        f"node4 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 comment here\n"
    )
    return {"a": a, "b": b, "seed": seed, "dir": d}


KH_WORDS = ["|1|", "|", ",", "!", "*", "?", "[", "]:", "@revoked ", "@cert-authority ", "#",
            "ssh-ed25519", "ssh-rsa", "AAAA", "=", " ", "\t", "\n", "\r", "\x00", "é"]  # fmt: skip
KH_HOSTS = ["node1", "10.0.0.1", "[node2]:2222", "[10.0.0.5]:2222", "gpu.lab", "evil.lab", "x"]


def check_known_hosts(host_keys: dict[str, object], text: str, host_id: str) -> None:
    path = host_keys["dir"] / "known_hosts"  # type: ignore[operator]
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    known = KnownHosts([path], app_file=host_keys["dir"] / "app")  # type: ignore[operator]
    known.known_types(host_id)
    for key in (host_keys["a"], host_keys["b"]):
        known.check(host_id, key)  # type: ignore[arg-type]


KH_INPUT = (st.data(), st.one_of(st.sampled_from(KH_HOSTS), st.text(max_size=16)))


def _kh_text(data: st.DataObject, host_keys: dict[str, object]) -> str:
    return data.draw(mutated([str(host_keys["seed"])], KH_WORDS))


@_settings(DEFAULT_EXAMPLES)
@given(*KH_INPUT)
def test_known_hosts_never_raises(host_keys, data, host_id) -> None:
    check_known_hosts(host_keys, _kh_text(data, host_keys), host_id)


@pytest.mark.slow
@_settings(SLOW_EXAMPLES)
@given(*KH_INPUT)
def test_known_hosts_never_raises_10k(host_keys, data, host_id) -> None:
    check_known_hosts(host_keys, _kh_text(data, host_keys), host_id)
