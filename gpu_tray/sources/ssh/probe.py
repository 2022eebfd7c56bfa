"""A GPU host polled over SSH: one persistent connection, one exec of the constant
poll script per poll, its output parsed into a snapshot."""

from __future__ import annotations

from dataclasses import replace

from gpu_tray.core.models import HostSnapshot, HostState, utcnow
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.base import SecretLookup
from gpu_tray.sources.ssh.nvsmi import (
    POLL_COMMAND,
    msg_missing_at,
    parse_poll_output,
    poll_input,
)
from gpu_tray.sources.ssh.session import SshFailure, SshSession

# nvidia-smi on an 8-GPU host without persistence mode can take several seconds.
COMMAND_TIMEOUT_S = 30.0


class SshProbe:
    kind = "ssh"

    def __init__(
        self,
        host: HostConfig,
        secrets: SecretLookup,
        *,
        session: SshSession | None = None,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self.name = host.name
        self.host = host
        self.session = session or SshSession(host, secrets)
        self.command_timeout_s = command_timeout_s
        self._stdin = poll_input(host)

    def expected_hosts(self) -> tuple[str, ...]:
        return (self.name,)

    def poll(self) -> list[HostSnapshot]:
        polled_at = utcnow()
        try:
            result = self.session.run(POLL_COMMAND, self.command_timeout_s, stdin=self._stdin)
        except SshFailure as failure:
            return [
                HostSnapshot(
                    self.name,
                    failure.state,
                    failure.message,
                    polled_at=polled_at,
                    host_key=failure.host_key,
                )
            ]
        parsed = parse_poll_output(result.stdout, result.stderr, result.exit_status)
        if parsed.state is HostState.NVIDIA_SMI_MISSING and self.host.nvidia_smi:
            parsed = replace(parsed, message=msg_missing_at(self.host.nvidia_smi))
        return [
            HostSnapshot(
                self.name,
                parsed.state,
                parsed.message,
                polled_at=polled_at,
                latency_ms=result.latency_ms,
                gpus=parsed.gpus,
                health=parsed.health,
                data_at=polled_at if parsed.state is HostState.OK else None,
            )
        ]

    def reset(self) -> None:
        self.session.reset()

    def disconnect(self) -> None:
        self.session.disconnect()

    def close(self) -> None:
        self.session.close()
