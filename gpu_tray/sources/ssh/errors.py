"""The one exception the SSH layer raises: a typed host state and a message for people."""

from __future__ import annotations

from gpu_tray.core.models import HostKeyInfo, HostState


class SshFailure(Exception):
    def __init__(self, state: HostState, message: str, host_key: HostKeyInfo | None = None):
        super().__init__(message)
        self.state = state
        self.message = message
        self.host_key = host_key


class TargetError(Exception):
    """The host cannot be reached as configured (e.g. an ssh_config option gpu-tray
    refuses); str() is a one-line message for people."""
