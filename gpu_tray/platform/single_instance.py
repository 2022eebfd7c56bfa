"""One gpu-tray per desktop session: a second one asks the first to show itself, then exits.

The first instance holds an exclusive lock on a file in the runtime dir for as
long as it runs, and listens on a local socket next to it. The lock decides
who is first even when two start at the same moment (a stale socket file left
by a crash cannot fool it); the socket carries the "show yourself" request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

try:
    import fcntl
except ImportError:  # not POSIX: the socket alone decides
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SHOW = b"show\n"


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR/gpu-tray, or a private folder in the temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    user = os.getuid() if hasattr(os, "getuid") else "user"
    path = Path(base) / "gpu-tray" if base else Path(tempfile.gettempdir()) / f"gpu-tray-{user}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _session_tag() -> str:
    """Two X displays of one user are two sessions, each with its own tray."""
    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or "nodisplay"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", display)


class SingleInstance(QObject):
    show_requested = Signal()

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        folder = folder or runtime_dir()
        tag = _session_tag()
        self.socket_path = str(folder / f"instance-{tag}.sock")
        self.lock_path = folder / f"instance-{tag}.lock"
        self._lock_fd: int | None = None
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True if we are the first instance (then `listen()`); False if one runs already."""
        if fcntl is None:
            return not self._ping()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def ask_first_to_show(self, timeout_ms: int = 3000) -> bool:
        """Tell the running instance to show its window. It may still be starting: retry a
        little while its lock is held but its socket is not up yet."""
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if self._ping(min(500, timeout_ms)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def _ping(self, timeout_ms: int = 500) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.socket_path)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(SHOW)
        sock.flush()
        sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        if sock.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            sock.waitForDisconnected(timeout_ms)
        return True

    def listen(self) -> None:
        # We hold the lock, so a socket file there is a leftover of a crashed instance.
        QLocalServer.removeServer(self.socket_path)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.socket_path):
            log.warning(
                "single instance: cannot listen on %s: %s", self.socket_path, server.errorString()
            )
            return
        server.newConnection.connect(self._on_connection)
        self._server = server

    def _on_connection(self) -> None:
        assert self._server is not None
        while (conn := self._server.nextPendingConnection()) is not None:
            # Slots on self, not lambdas holding the socket: Python must not own it.
            conn.readyRead.connect(self._read)
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._handle(conn)

    def _read(self) -> None:
        conn = self.sender()
        if isinstance(conn, QLocalSocket):
            self._handle(conn)

    def _handle(self, conn: QLocalSocket) -> None:
        data = bytes(conn.readAll().data())
        if SHOW.strip() in data:
            log.info("another gpu-tray asked this one to show itself")
            self.show_requested.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
