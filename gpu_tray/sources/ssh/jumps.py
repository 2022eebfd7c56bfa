"""ProxyJump hops as ssh reads them: `[user@]host[:port]`, `[v6addr]:port`, `ssh://...`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hop:
    user: str | None
    host: str
    port: int | None


def parse_hop(text: str) -> Hop:
    """One hop, like misc.c's parse_user_host_port (and parse_ssh_uri for `ssh://`).
    Raises ValueError with a message for people."""
    spec = text
    if not spec or any(c in spec for c in " \t\r\n"):
        raise ValueError(f"ProxyJump hop {text!r} is not [user@]host[:port]")
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://") :].removesuffix("/")
        if "/" in spec:
            raise ValueError(f"ProxyJump hop {text!r} has a path")
    user = None
    if "@" in spec:
        user, _, spec = spec.rpartition("@")
        if not user:
            raise ValueError(f"ProxyJump hop {text!r} has an empty user")
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise ValueError(f"ProxyJump hop {text!r} has no closing ]")
        host, rest = spec[1:end], spec[end + 1 :]
        if rest and rest[0] not in ":/":
            raise ValueError(f"ProxyJump hop {text!r} is not [user@]host[:port]")
        port_text = rest[1:] if rest else ""
    else:
        cut = min((i for i in (spec.find(":"), spec.find("/")) if i >= 0), default=len(spec))
        host, port_text = spec[:cut], spec[cut + 1 :]
    if not host:
        raise ValueError(f"ProxyJump hop {text!r} has no host")
    port = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise ValueError(f"ProxyJump hop {text!r} has a bad port")
        port = int(port_text)
    return Hop(user, host, port)


def parse_hops(text: str) -> list[Hop]:
    """`a,b,c` in the order they are reached. Raises ValueError."""
    return [parse_hop(part) for part in text.split(",")]


def format_hop(user: str, host: str, port: int) -> str:
    """`user@host:port`, with brackets around an IPv6 address."""
    shown = f"[{host}]" if ":" in host else host
    return f"{user}@{shown}:{port}"
