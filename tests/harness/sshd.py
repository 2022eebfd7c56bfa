"""Real OpenSSH servers on loopback, with a fake `nvidia-smi` that replays real captures.

Each `Sshd` is one fake GPU host: `sshd -D -e -f CONF` listening on its own
127.0.0.N address and port, with its own host key, and `SetEnv PATH=...` putting
the fake nvidia-smi first on the remote PATH. Logins are as a test user whose
name is longer than 8 characters (the `ps aux` truncation bug). Everything lives
in a world-readable temp folder, because sshd runs the remote side as that user.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NVSMI_FIXTURES = HERE.parent / "fixtures" / "nvidia-smi"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
TEST_USER = "gputray-tester-long"  # 19 characters: `ps aux` would print "gputray+"
TEST_PASSWORD = "correct horse battery staple"


def skip_unless_sshd_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a test user and runs sshd (CI runs as root)")
    if not Path(SSHD).exists():
        pytest.skip("needs openssh-server (sshd): sh packaging/test.sh installs it")


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_listening(address: str, port: int, proc: subprocess.Popen | None, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {address}:{port}:\n{log.read_text()}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "gpu-tray-test", "-f", str(path)],
        check=True,
    )
    return path


def public_key(path: Path) -> tuple[str, str]:
    """(type, base64) of a key pair's public half."""
    kind, b64, *_ = Path(str(path) + ".pub").read_text().split()
    return kind, b64


def fingerprint_of(path: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(path) + ".pub"], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]


@dataclass
class SshWorld:
    """Shared by every fake host of a test session: the temp folder, the test user, a
    client key and the authorized_keys file."""

    base: Path
    user: str
    password: str
    uid: int
    gid: int
    client_key: Path
    authorized_keys: Path
    fake_nvsmi: Path

    def subdir(self, name: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        d.chmod(0o755)
        return d

    def fixture(self, name: str) -> str:
        """A capture from tests/fixtures/nvidia-smi, copied where the test user can read it."""
        dest = self.base / "fixtures" / name
        if not dest.exists():
            dest.parent.mkdir(exist_ok=True, mode=0o755)
            shutil.copyfile(NVSMI_FIXTURES / name, dest)
            dest.chmod(0o644)
        return str(dest)

    def run_as_user(self, *argv: str) -> subprocess.Popen:
        """A real process owned by the test user (its PID stands in for a CUDA job)."""
        return subprocess.Popen(
            ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *argv]
        )


def make_world() -> SshWorld:
    skip_unless_sshd_possible()
    base = Path(tempfile.mkdtemp(prefix="gpu-tray-sshd-"))
    base.chmod(0o755)
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        home = Path(tempfile.gettempdir()) / f"{TEST_USER}-home"
        subprocess.run(
            ["useradd", "-M", "-d", str(home), "-s", "/bin/bash", TEST_USER],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(TEST_USER)
    # sshd starts the remote side in the user's home: it must exist.
    Path(pw.pw_dir).mkdir(parents=True, exist_ok=True)
    os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{TEST_PASSWORD}\n", text=True, check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    client_key = keygen(base / "client_ed25519")
    authorized = base / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    authorized.chmod(0o644)
    fake = base / "fake_nvidia_smi.py"
    shutil.copyfile(HERE / "fake_nvidia_smi.py", fake)
    fake.chmod(0o755)
    return SshWorld(
        base, TEST_USER, TEST_PASSWORD, pw.pw_uid, pw.pw_gid, client_key, authorized, fake
    )


@dataclass
class Sshd:
    """One fake GPU host: a real sshd on `address`:`port`."""

    world: SshWorld
    address: str = "127.0.0.2"
    port: int = 0
    key_type: str = "ed25519"
    with_nvidia_smi: bool = True
    log_level: str = "VERBOSE"
    extra_config: str = ""
    netns: str | None = None  # run inside this network namespace
    dir: Path = field(init=False)
    proc: subprocess.Popen | None = field(init=False, default=None)
    host_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.dir = self.world.subdir(f"sshd-{self.address}")
        self.port = self.port or (free_port(self.address) if self.netns is None else 2222)
        self.host_key = keygen(self.dir / f"host_{self.key_type}", self.key_type)
        bin_dir = self.dir / "bin"
        bin_dir.mkdir(mode=0o755)
        if self.with_nvidia_smi:
            (bin_dir / "nvidia-smi").symlink_to(self.world.fake_nvsmi)
        self.scenario_path = self.dir / "scenario.json"
        self.set_scenario(gpus=[{"csv": self.world.fixture(IDLE_H100)}])
        self.log = self.dir / "sshd.log"

    # -- what nvidia-smi answers -----------------------------------------------------------

    def set_scenario(self, **scenario: object) -> None:
        tmp = self.scenario_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(scenario))
        tmp.chmod(0o644)
        tmp.replace(self.scenario_path)  # atomic: a poll never reads half a file

    # -- the daemon -------------------------------------------------------------------------

    def config_text(self) -> str:
        return f"""\
ListenAddress {self.address}:{self.port}
HostKey {self.host_key}
PidFile {self.dir / "sshd.pid"}
AuthorizedKeysFile {self.world.authorized_keys}
StrictModes no
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers {self.world.user}
AllowTcpForwarding yes
MaxStartups 500
MaxSessions 200
MaxAuthTries 20
PrintMotd no
LogLevel {self.log_level}
SetEnv PATH={self.dir / "bin"}:/usr/bin:/bin GPU_TRAY_FAKE_NVSMI={self.scenario_path}
{self.extra_config}
"""

    def start(self) -> Sshd:
        conf = self.dir / "sshd_config"
        conf.write_text(self.config_text())
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        listening = f"Server listening on {self.address} port {self.port}"
        already = self.log_text().count(listening)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*prefix, SSHD, "-D", "-e", "-f", str(conf)], stdout=log, stderr=log
            )
        if self.netns:  # not reachable from here: wait for sshd to say it listens
            deadline = time.monotonic() + 15
            while self.log_text().count(listening) == already:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start:\n{self.log_text()}")
                time.sleep(0.02)
        else:
            wait_listening(self.address, self.port, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9 the listener and every session it forked (a crashed or rebooted host)."""
        if self.proc is None:
            return
        # Session processes outlive the listener; a reboot would not take them along.
        doomed = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def new_host_key(self, key_type: str | None = None) -> None:
        """Give the host a different key (takes effect at the next start)."""
        self.key_type = key_type or self.key_type
        self.host_key = keygen(
            self.dir / f"host_{self.key_type}_{time.monotonic_ns()}", self.key_type
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- what the client needs to know ------------------------------------------------------

    @property
    def host_id(self) -> str:
        return f"[{self.address}]:{self.port}"

    def known_hosts_line(self) -> str:
        kind, b64 = public_key(self.host_key)
        return f"{self.host_id} {kind} {b64}\n"

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.host_key)


IDLE_H100 = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_idle_allfields_header.csv"


@contextlib.contextmanager
def running(*servers: Sshd) -> Iterator[tuple[Sshd, ...]]:
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop()


FAST_GPU_CSV = "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
FAST_APPS_CSV = "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"


def install_fast_nvidia_smi(world: SshWorld, gpus: int = 1) -> Path:
    """For benchmarks: an `sh` nvidia-smi that prints pre-rendered rows of a real H100
    capture (one per GPU, indices 0..gpus-1) in ~1 ms, like a warm driver, so that what
    is timed is SSH and gpu-tray rather than a Python start-up. Hosts started after this
    use it."""
    from gpu_tray.sources.ssh.nvsmi import APP_FIELDS, GPU_FIELDS
    from tests.harness.fake_nvidia_smi import select_fields

    out = world.base / "rendered"
    out.mkdir(mode=0o755, exist_ok=True)
    [row] = select_fields((NVSMI_FIXTURES / FAST_GPU_CSV).read_text(), GPU_FIELDS)
    rest = row.split(", ", 1)[1]
    (out / "gpus").write_text("".join(f"{i}, {rest}\n" for i in range(gpus)))
    apps = select_fields((NVSMI_FIXTURES / FAST_APPS_CSV).read_text(), APP_FIELDS)
    (out / "apps").write_text("\n".join(apps) + "\n")
    for f in out.iterdir():
        f.chmod(0o644)
    script = world.base / "fast-nvidia-smi"
    script.write_text(
        '#!/bin/sh\ncase "$1" in\n'
        f"  --query-gpu=*) cat {out / 'gpus'} ;;\n"
        f"  --query-compute-apps=*) cat {out / 'apps'} ;;\nesac\n"
    )
    script.chmod(0o755)
    world.fake_nvsmi = script
    return script
