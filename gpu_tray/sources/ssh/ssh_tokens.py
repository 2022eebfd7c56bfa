"""`%h`-style tokens, `${VAR}`, `~` and time values in ssh_config, as OpenSSH 9.2 expands them.

Which keyword takes which tokens is ssh_config(5)'s TOKENS section; an unknown token
or an unset variable is an error there, so it is one here (ssh would refuse to run).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from gpu_tray.sources.ssh.ssh_config_lex import LexError

#: CertificateFile, ControlPath, IdentityAgent, IdentityFile, UserKnownHostsFile, ...
PATH_TOKENS = "%CdhikLlnpru"
#: HostName
HOSTNAME_TOKENS = "%h"
#: ProxyCommand and ProxyJump
PROXY_TOKENS = "%hnpr"


def expand(text: str, values: Mapping[str, str], allowed: str, dollar: bool = False) -> str:
    """Replace `%X` tokens (and `${VAR}` when `dollar`) in one scan: what an expansion
    produces is not expanded again. Raises LexError for a token the keyword does not take,
    a lone `%` at the end, or an unset variable."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if dollar and c == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise LexError(f"no closing brace in {text!r}")
            name = text[i + 2 : end]
            value = os.environ.get(name) if name else None
            if value is None:
                raise LexError(f"environment variable ${{{name}}} has no value")
            out.append(value)
            i = end + 1
            continue
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise LexError(f"a lone % at the end of {text!r}")
        key = text[i + 1]
        if key not in allowed:
            raise LexError(f"unknown token %{key} in {text!r}")
        out.append("%" if key == "%" else values[key])
        i += 2
    return "".join(out)


def tilde(path: str, home: Path) -> str:
    """`~` and `~/x` are the user's home; `~name/x` is that user's. Only at the start."""
    if not path.startswith("~"):
        return path
    head, sep, tail = path[1:].partition("/")
    if head:
        try:
            base = pwd.getpwnam(head).pw_dir
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise LexError(f"no such user {head!r} in {path!r}") from None
    else:
        base = str(home)
    if not sep:
        return base
    return base.rstrip("/") + "/" + tail


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def convtime(text: str) -> int:
    """`90`, `1m30s`, `2h`: seconds, as ssh's convtime(). Raises LexError otherwise."""
    total, i, n = 0, 0, len(text)
    if not text:
        raise LexError("an empty time")
    while i < n:
        j = i
        while j < n and "0" <= text[j] <= "9":
            j += 1
        if j == i:
            raise LexError(f"invalid time value {text!r}")
        unit = text[j].lower() if j < n else ""
        if unit not in _UNITS:
            raise LexError(f"invalid time value {text!r}")
        total += int(text[i:j]) * _UNITS[unit]
        i = j + (1 if unit else 0)
    if total > 2**31 - 1:
        raise LexError(f"invalid time value {text!r}")
    return total
