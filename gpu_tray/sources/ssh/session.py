"""One persistent SSH connection to one host (through its ProxyJump hops), reused for
every command.

paramiko's `Transport` is used directly rather than `SSHClient`, so that every
step has its own timeout and its own message: TCP connect, banner, key
exchange, host-key check, authentication, channel open, and a deadline for the
command itself. The TCP socket is made here with TCP_NODELAY: without it a
command on a kept-open connection takes ~50 ms instead of ~10 ms (Nagle's
algorithm delaying the small request packets).
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.ssh_exception import ChannelException, SSHException

from gpu_tray.core.models import HostKeyInfo, HostState
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.base import SecretLookup
from gpu_tray.sources.ssh.auth import authenticate
from gpu_tray.sources.ssh.errors import SshFailure
from gpu_tray.sources.ssh.host_keys import Check, KnownHosts, Verdict
from gpu_tray.sources.ssh.target import (
    SshConfig,
    SshTarget,
    TargetError,
    load_ssh_config,
    resolve,
)

log = logging.getLogger(__name__)

KEEPALIVE_S = 15

__all__ = ["ExecResult", "SshFailure", "SshSession"]


@dataclass(frozen=True, slots=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_status: int
    latency_ms: float


class _Lost(Exception):
    """The kept connection died, or went silent, under us: worth one fresh connection."""

    def __init__(self, state: HostState, message: str) -> None:
        super().__init__(message)
        self.state = state


class SshSession:
    def __init__(
        self,
        host: HostConfig,
        secrets: SecretLookup,
        *,
        known_hosts: KnownHosts | None = None,
        ssh_config: SshConfig | None = None,
        nodelay: bool = True,
    ) -> None:
        self.host = host
        self.secrets = secrets
        self.nodelay = nodelay
        self._known_hosts = known_hosts
        self._ssh_config = ssh_config
        self._chain: list[paramiko.Transport] = []
        self._target: SshTarget | None = None
        self._lock = threading.Lock()
        #: How many times a connection was opened (reuse shows as 1 across many runs).
        self.connects = 0

    # -- public ------------------------------------------------------------------------------

    def run(self, command: str, timeout_s: float, stdin: bytes = b"") -> ExecResult:
        """Run a constant command; connects (or reconnects) as needed. Raises SshFailure.

        Per-host values reach the remote side as `stdin` data, never inside `command`:
        nothing from config or from a remote host is pasted into a shell string."""
        with self._lock:
            reused = self._alive()
            if not reused:
                self._open()
            try:
                return self._exec(command, timeout_s, stdin)
            except _Lost as exc:
                self._close_chain()
                if not reused:
                    raise SshFailure(exc.state, str(exc)) from None
                log.info("%s: kept connection lost (%s); reconnecting", self.host.name, exc)
            self._open()
            try:
                return self._exec(command, timeout_s, stdin)
            except _Lost as exc:
                self._close_chain()
                raise SshFailure(exc.state, str(exc)) from None

    def offered_host_key(self) -> HostKeyInfo:
        """The key the host offers now (reached through its jump hosts, which must be
        trusted), without authenticating to it. `known_*` is set when it differs from
        the key on file. Raises SshFailure for network and jump-host problems."""
        with self._lock:
            target = self._resolve()
            known = self._known(target)
            chain: list[paramiko.Transport] = []
            try:
                sock = self._first_socket(target, chain)
                t = self._handshake(sock, target)
                chain.append(t)
                check = known.check(target.host_id, t.get_remote_server_key())
                return check.info
            finally:
                _close_all(chain)

    def disconnect(self) -> None:
        """Drop the connection (after a resume from sleep); the next run reconnects.
        A run in progress keeps its connection: it reconnects by itself if that died."""
        if self._lock.acquire(blocking=False):
            try:
                self._close_chain()
            finally:
                self._lock.release()

    def reset(self) -> None:
        """The user changed credentials, trust or config: start from scratch."""
        with self._lock:
            self._close_chain()

    def close(self) -> None:
        self.reset()

    # -- connecting ----------------------------------------------------------------------------

    def _alive(self) -> bool:
        return bool(self._chain) and all(t.is_active() for t in self._chain)

    def _resolve(self) -> SshTarget:
        try:
            # Re-read ~/.ssh/config on every connect: the user may just have fixed it.
            ssh_config = self._ssh_config if self._ssh_config is not None else load_ssh_config()
            self._target = resolve(self.host, ssh_config)
        except TargetError as exc:
            raise SshFailure(HostState.UNREACHABLE, str(exc)) from None
        return self._target

    def _known(self, target: SshTarget) -> KnownHosts:
        if self._known_hosts is not None:
            return self._known_hosts
        files = [Path(p) for p in target.known_hosts_files] or None
        return KnownHosts(files)

    def _open(self) -> None:
        self._close_chain()
        target = self._resolve()
        chain: list[paramiko.Transport] = []
        try:
            sock = self._first_socket(target, chain)
            t = self._handshake(sock, target)
            chain.append(t)
            self._verify(t, target)
            authenticate(t, target, self.secrets, self.host.name)
        except BaseException:
            _close_all(chain)
            raise
        for t in chain:
            t.set_keepalive(KEEPALIVE_S)
        self._chain = chain
        self.connects += 1
        log.debug("%s: connected to %s (%d hops)", self.host.name, target.address, len(chain))

    def _first_socket(
        self, target: SshTarget, chain: list[paramiko.Transport]
    ) -> socket.socket | paramiko.Channel:
        """A socket to `target`: TCP, or a direct-tcpip channel through each jump in turn
        (each jump verified and authenticated). Transports opened are added to `chain`."""
        hops = [*target.jumps, target]
        sock: socket.socket | paramiko.Channel = self._tcp(hops[0])
        for prev, hop in itertools.pairwise(hops):
            t = self._handshake(sock, prev)
            chain.append(t)
            self._verify(t, prev)
            authenticate(t, prev, self.secrets, self.host.name)
            sock = self._forward(t, prev, hop)
        return sock

    def _tcp(self, hop: SshTarget) -> socket.socket:
        addr, timeout = hop.address, hop.connect_timeout_s
        try:
            sock = socket.create_connection((hop.hostname, hop.port), timeout=timeout)
        except socket.gaierror:
            raise SshFailure(
                HostState.UNREACHABLE, f"Cannot resolve host name {hop.hostname}"
            ) from None
        except ConnectionRefusedError:
            raise SshFailure(HostState.UNREACHABLE, f"Connection refused by {addr}") from None
        except TimeoutError:
            raise SshFailure(
                HostState.TIMEOUT, f"No answer from {addr} within {timeout:g} s"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise SshFailure(HostState.UNREACHABLE, f"Cannot connect to {addr}: {reason}") from None
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _forward(
        self, via: paramiko.Transport, jump: SshTarget, hop: SshTarget
    ) -> paramiko.Channel:
        timeout = hop.connect_timeout_s
        try:
            return via.open_channel(
                "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=timeout
            )
        except ChannelException as exc:
            raise SshFailure(
                HostState.UNREACHABLE,
                f"Jump host {jump.alias} could not connect to {hop.address}: {exc.text}",
            ) from None
        except SSHException as exc:
            if "Timeout" in str(exc):
                raise SshFailure(
                    HostState.TIMEOUT,
                    f"Jump host {jump.alias} did not connect to {hop.address} within {timeout:g} s",
                ) from None
            raise SshFailure(
                HostState.UNREACHABLE, f"Lost the connection to jump host {jump.alias}"
            ) from None

    def _handshake(
        self, sock: socket.socket | paramiko.Channel, hop: SshTarget
    ) -> paramiko.Transport:
        timeout = hop.connect_timeout_s
        t = paramiko.Transport(sock)
        t.banner_timeout = t.handshake_timeout = t.auth_timeout = timeout
        _prefer_known_key_types(t, self._known(hop).known_types(hop.host_id))
        started = time.monotonic()
        try:
            t.start_client(timeout=timeout)
        except (SSHException, EOFError, OSError) as exc:
            t.close()
            raise _handshake_failure(t, hop, exc, time.monotonic() - started) from None
        if not t.is_active() or not t.initial_kex_done:
            t.close()  # start_client returns, without raising, when its own timeout passes
            if not t.remote_version:
                raise SshFailure(HostState.TIMEOUT, _no_banner(hop))
            raise SshFailure(
                HostState.TIMEOUT,
                f"SSH negotiation with {hop.address} did not finish within {timeout:g} s",
            )
        return t

    def _verify(self, t: paramiko.Transport, hop: SshTarget) -> None:
        check = self._known(hop).check(hop.host_id, t.get_remote_server_key())
        if check.verdict is not Verdict.TRUSTED:
            raise SshFailure(*_host_key_problem(check, self.host.name), host_key=check.info)

    # -- running -----------------------------------------------------------------------------

    def _exec(self, command: str, timeout_s: float, stdin: bytes = b"") -> ExecResult:
        t = self._chain[-1]
        target = self._target
        assert target is not None
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        too_slow = f"The poll command on {target.address} did not finish within {timeout_s:g} s"
        try:
            chan = t.open_session(timeout=min(timeout_s, target.connect_timeout_s))
        except (SSHException, EOFError, OSError) as exc:
            if t.is_active() and "Timeout" in str(exc):
                raise _Lost(HostState.TIMEOUT, too_slow) from None
            raise _Lost(HostState.UNREACHABLE, _lost(target, exc)) from None
        try:
            try:
                chan.exec_command(command)
                if stdin:
                    chan.sendall(stdin)
                chan.shutdown_write()
            except (SSHException, EOFError, OSError) as exc:
                raise _Lost(HostState.UNREACHABLE, _lost(target, exc)) from None
            out, err = _drain(chan, deadline)
            if out is None or not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise SshFailure(HostState.TIMEOUT, too_slow)
            status = chan.recv_exit_status()  # already there: status_event is set
        finally:
            chan.close()
        return ExecResult(
            bytes(out), bytes(err or b""), status, (time.perf_counter() - started) * 1000
        )

    def _close_chain(self) -> None:
        _close_all(self._chain)
        self._chain = []


def _drain(chan: paramiko.Channel, deadline: float) -> tuple[bytearray | None, bytearray]:
    """Read stdout and stderr together until both end, so a full stderr can never stall
    stdout (and reading the exit status first cannot deadlock). None on deadline."""
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
            return out, err
        if chan.closed:
            return out, err
        left = deadline - time.monotonic()
        if left <= 0:
            return None, err
        # The channel's fileno becomes readable when either stream has data or ends.
        select.select([chan], [], [], left)


def _lost(target: SshTarget, exc: BaseException) -> str:
    return f"The connection to {target.address} was lost ({str(exc) or type(exc).__name__})"


def _close_all(chain: list[paramiko.Transport]) -> None:
    for t in reversed(chain):
        try:
            t.close()
        except Exception:  # closing a dead transport can raise anything; it is gone anyway
            log.debug("closing transport", exc_info=True)


def _prefer_known_key_types(t: paramiko.Transport, known: list[str]) -> None:
    """Ask for a key type we already know, as ssh does: a server with ed25519 and RSA keys
    whose RSA key is on file must not look like a changed host."""
    if not known:
        return
    opts = t.get_security_options()
    current = list(opts.key_types)
    first = [k for k in known if k in current]
    if first:
        opts.key_types = tuple(first + [k for k in current if k not in first])


def _no_banner(hop: SshTarget) -> str:
    return (
        f"{hop.address} accepted the connection but sent no SSH banner "
        f"within {hop.connect_timeout_s:g} s"
    )


def _handshake_failure(
    t: paramiko.Transport, hop: SshTarget, exc: BaseException, elapsed: float
) -> SshFailure:
    if not t.remote_version:
        if elapsed >= hop.connect_timeout_s * 0.9:
            return SshFailure(HostState.TIMEOUT, _no_banner(hop))
        return SshFailure(
            HostState.UNREACHABLE,
            f"{hop.address} closed the connection before the SSH handshake",
        )
    text = str(exc) or type(exc).__name__
    if "Indecipherable" in text:
        return SshFailure(HostState.UNREACHABLE, f"{hop.address} does not speak SSH")
    return SshFailure(HostState.UNREACHABLE, f"SSH negotiation with {hop.address} failed: {text}")


def _host_key_problem(check: Check, name: str) -> tuple[HostState, str]:
    i = check.info
    if check.verdict is Verdict.UNKNOWN:
        return (
            HostState.HOST_KEY_UNKNOWN,
            f"Unknown host key for {i.host_id}: {i.key_type} {i.fingerprint}. "
            f"Check the fingerprint, then trust it with `gpu-tray trust {name}`",
        )
    if check.verdict is Verdict.REVOKED:
        return (
            HostState.HOST_KEY_CHANGED,
            f"The host key of {i.host_id} ({i.key_type} {i.fingerprint}) is marked "
            f"@revoked in {i.known_file} line {i.known_line}: refusing to connect",
        )
    return (
        HostState.HOST_KEY_CHANGED,
        f"HOST KEY CHANGED for {i.host_id}: it now offers {i.key_type} {i.fingerprint}, "
        f"but {i.known_file} line {i.known_line} has {i.known_fingerprint}. Refusing to "
        "connect: this can be an attack. If the change is expected, remove that line",
    )
