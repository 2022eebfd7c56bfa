"""Small helpers shared by the engine harnesses: free ports, waiting, stopping daemons."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class HarnessError(RuntimeError):
    """A daemon did not come up; the message carries its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(
    condition: Callable[[], T | None],
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy; raise HarnessError at the deadline."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the daemon is not ready yet
            last_exc = exc
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise HarnessError(
                f"timed out after {timeout_s:g} s waiting for {what}"
                + (f" (last error: {last_exc})" if last_exc else "")
                + (f"\n{detail}" if detail else "")
            )
        time.sleep(interval_s)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    """SIGTERM the process we started (by its pid), then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def tail(path: os.PathLike[str] | str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def missing_binaries(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


def skip_reason(*binaries: str, need_root: bool = False) -> str | None:
    """Why an engine test cannot run here, or None when it can."""
    missing = missing_binaries(*binaries)
    if missing:
        return f"not installed: {', '.join(missing)} (packaging/test.sh installs them)"
    if need_root and os.geteuid() != 0:
        return "needs root (the daemons run as root in CI)"
    return None
