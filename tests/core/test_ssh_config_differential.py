"""gpu-tray reads ssh_config as the real OpenSSH client does: `ssh -G -F FILE NAME` and
`gpu-tray hosts show NAME --ssh-config FILE --json` must agree on hostname, user, port
and the jump hops, on every config of the corpus.

Needs only the ssh client (no sshd). ssh takes `~` and relative Include paths from the
passwd entry, not from $HOME, so ssh runs under nss_wrapper with a passwd file whose
user `alice` lives in a temporary home: the real user's files never leak in, and
`localuser` and the default user are known.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_tray.cli.main import main
from tests.core.ssh_config_corpus import CASES

LOCAL_USER = "alice"



def _preloads(library: str) -> bool:
    """Whether the dynamic loader finds `library` (it complains on stderr when not)."""
    out = subprocess.run(["true"], env={"LD_PRELOAD": library}, capture_output=True, text=True)
    return out.returncode == 0 and not out.stderr


pytestmark = [
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client"),
    pytest.mark.skipif(
        not _preloads("libnss_wrapper.so"),
        reason="needs libnss-wrapper (packaging/test.sh installs it)",
    ),
]


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


class World:
    """A home for `alice` with one case's files, and ssh -G run as her."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.home = root / "home"
        (self.home / ".ssh").mkdir(parents=True)
        for rel, text in files.items():
            path = (self.home / ".ssh" / rel).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{home}", str(self.home)))
        self.config = self.home / ".ssh" / "config"
        passwd = root / "passwd"
        passwd.write_text(f"{LOCAL_USER}:x:{os.getuid()}:{os.getgid()}:A:{self.home}:/bin/sh\n")
        group = root / "group"
        group.write_text(f"{LOCAL_USER}:x:{os.getgid()}:\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "USER": LOCAL_USER,
            "LOGNAME": LOCAL_USER,
            "LD_PRELOAD": "libnss_wrapper.so",
            "NSS_WRAPPER_PASSWD": str(passwd),
            "NSS_WRAPPER_GROUP": str(group),
        }

    def ssh_g(self, name: str, user: str | None = None, port: int | None = None) -> dict[str, str]:
        argv = ["ssh", "-G", "-F", str(self.config)]
        if user:
            argv += ["-l", user]
        if port:
            argv += ["-p", str(port)]
        out = subprocess.run(
            [*argv, name], env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=30, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        values: dict[str, str] = {}
        for line in out.stdout.splitlines():
            key, _, value = line.partition(" ")
            values.setdefault(key, value)
        return values

    def ssh_view(self, name: str, user: str | None = None, port: int | None = None) -> dict:
        """What ssh connects to for `name`: its address and the hops before it, each hop
        looked up with ssh -G as ssh itself does for `ProxyJump a,b,c` (`ssh -J a,b c`:
        the first hop with its own ProxyJump, the later ones behind -J)."""
        g = self.ssh_g(name, user, port)
        hops: list[str] = []
        jump = g.get("proxyjump", "none")
        if jump != "none":
            for i, spec in enumerate(jump.split(",")):
                hop_user, hop_host, hop_port = _split_hop(spec)
                if i == 0:
                    first = self.ssh_view(hop_host, hop_user, hop_port)
                    hops += first["proxy_jump"]
                    hops.append(_hop(first["user"], first["hostname"], first["port"]))
                else:
                    h = self.ssh_g(hop_host, hop_user, hop_port)
                    hops.append(_hop(h["user"], h["hostname"], int(h["port"])))
        return {"hostname": g["hostname"], "user": g["user"], "port": int(g["port"]),
                "proxy_jump": hops}  # fmt: skip


def _split_hop(spec: str) -> tuple[str | None, str, int | None]:
    """ssh -G prints a hop as `user@host:port`, numeric hosts in brackets."""
    spec = spec.removeprefix("ssh://")
    user, _, rest = spec.rpartition("@")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = rest.partition(":")
    return user or None, host, int(port) if port else None


def _hop(user: str, host: str, port: int) -> str:
    return f"{user}@[{host}]:{port}" if ":" in host else f"{user}@{host}:{port}"


def gpu_tray_view(world: World, name: str, capsys, monkeypatch) -> dict:
    for key in ("HOME", "USER", "LOGNAME"):
        monkeypatch.setenv(key, world.env[key])
    code = main(["--config", str(world.home / "none.toml"), "hosts", "show", name,
                 "--ssh-config", str(world.config), "--json"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    return {k: data[k] for k in ("hostname", "user", "port", "proxy_jump")}


@pytest.mark.parametrize(("files", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gpu_tray_agrees_with_ssh_G(files, names, tmp_path, capsys, monkeypatch) -> None:
    world = World(tmp_path, files)
    for name in names:
        assert gpu_tray_view(world, name, capsys, monkeypatch) == world.ssh_view(name), name
