"""A channel's Apprise URL in the OS keyring: service `gpu-tray`, account `channel:NAME`.

Webhook URLs are secrets (whoever has a Slack webhook URL can post as the lab), so they
go through the same `SecretStore` as passwords: its own thread, timeouts, and a plain
message when there is no keyring. Every call may block up to the store's timeout: call
from a worker thread.
"""

from __future__ import annotations

from gpu_tray.credentials.keyring_store import SaveResult, SecretStore

KIND = "channel"


def account(name: str) -> str:
    return f"{KIND}:{name}"


def what(name: str) -> str:
    """How the log names the secret: never the URL itself."""
    return f"the URL of channel {name}"


class ChannelStore:
    def __init__(self, secrets: SecretStore) -> None:
        self.secrets = secrets

    def url(self, name: str) -> str | None:
        return self.secrets.secret(KIND, name)

    def has_url(self, name: str) -> bool:
        return self.url(name) is not None

    def save(self, name: str, url: str) -> SaveResult:
        return self.secrets.set_account(account(name), url, what(name))

    def forget(self, name: str) -> bool:
        return self.secrets.forget_account(account(name), what(name))
