"""The interface every source implements.

A source is split into probes. A probe is polled from its own worker thread,
so a slow or dead probe never delays another. For SSH there is one probe per
host; for the demo one per simulated host; for Prometheus or Slurm one probe
per engine, which reports many hosts at once.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gpu_tray.core.models import HostSnapshot


@runtime_checkable
class Probe(Protocol):
    #: A label for logs and the menu ("gpu-node1", "prometheus http://...").
    name: str
    #: Where its hosts come from, shown in the menu: "ssh", "demo", "prometheus", "slurm".
    kind: str

    def expected_hosts(self) -> tuple[str, ...]:
        """Host names known before the first poll (may be empty for discovery sources)."""
        ...

    def poll(self) -> list[HostSnapshot]:
        """Blocking. Must return within its own deadlines and must not raise:
        every failure becomes a snapshot with a typed state and a message."""
        ...

    def reset(self) -> None:
        """The user changed something (credentials, trust): forget auth/host-key
        failures and reconnect on the next poll."""
        ...

    def close(self) -> None: ...


class SecretLookup(Protocol):
    """Where the sources get passwords, key passphrases and tokens (the OS keyring).

    Called on worker threads only. Returns None when nothing is stored, and
    never raises: a keyring failure is the implementation's to report.
    """

    def password(self, user: str, host: str, port: int) -> str | None: ...

    def passphrase(self, key_path: str) -> str | None: ...

    def secret(self, kind: str, account: str) -> str | None:
        """Any other secret a source needs, e.g. kind "prometheus-token" with the
        source URL as account, or "prometheus-password" with "user@URL"."""
        ...


class NoSecrets:
    """For agent- and unencrypted-key-only setups, and for tests of our own logic."""

    def password(self, user: str, host: str, port: int) -> str | None:
        return None

    def passphrase(self, key_path: str) -> str | None:
        return None

    def secret(self, kind: str, account: str) -> str | None:
        return None
