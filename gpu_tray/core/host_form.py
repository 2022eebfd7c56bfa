"""The host form's fields, checked one by one with the config validator's own rules.

Qt-free, so `gpu-tray hosts add` and the settings dialog refuse the same input
with the same words, and tests need no QApplication. A problem is reported
per field (for an inline message next to it), before anything is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

import tomlkit

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.config_edit import host_table
from gpu_tray.core.settings import AuthMethod, FreeThresholds, HostConfig

AUTH_CHOICES: tuple[AuthMethod, ...] = ("agent", "key", "password")


@dataclass(frozen=True, slots=True)
class HostForm:
    """What the form holds: text as typed; empty means "not set" (ssh config or default)."""

    name: str = ""
    hostname: str = ""
    port: str = ""
    user: str = ""
    identity_file: str = ""
    proxy_jump: str = ""
    auth: str = ""  # "" = any method, in ssh's order
    own_free: bool = False
    max_memory_mib: int = FreeThresholds().max_memory_mib
    max_utilization_pct: int = FreeThresholds().max_utilization_pct
    nvidia_smi: str = ""  # "" = search PATH and the usual folders
    # Not on the form: carried through so that editing a host keeps its `disks`.
    disks: tuple[str, ...] = ()


def form_of(host: HostConfig) -> HostForm:
    free = host.free
    return HostForm(
        name=host.name,
        hostname=host.hostname or "",
        port="" if host.port is None else str(host.port),
        user=host.user or "",
        identity_file=host.identity_file or "",
        proxy_jump=host.proxy_jump or "",
        auth=host.auth or "",
        own_free=free is not None,
        max_memory_mib=(free or FreeThresholds()).max_memory_mib,
        max_utilization_pct=(free or FreeThresholds()).max_utilization_pct,
        nvidia_smi=host.nvidia_smi or "",
        disks=host.disks,
    )


def check_form(
    form: HostForm, other_names: Collection[str] = ()
) -> tuple[HostConfig | None, dict[str, str]]:
    """(the host, {}) when every field is fine, else (None, {field: problem})."""
    problems: dict[str, str] = {}
    name = form.name.strip()
    if not name:
        problems["name"] = "A name is required (an alias from ~/.ssh/config, or a hostname)"
    elif name in other_names:
        problems["name"] = f"Another host is already called {name!r}"
    port: int | None = None
    text = form.port.strip()
    if text:
        try:
            port = int(text)
        except ValueError:
            problems["port"] = f"must be a whole number from 1 to 65535, got {text!r}"
    if form.auth and form.auth not in AUTH_CHOICES:
        problems["auth"] = f'must be "agent", "key" or "password", got {form.auth!r}'
    host = HostConfig(
        name=name or "x",
        hostname=form.hostname.strip() or None,
        port=port,
        user=form.user.strip() or None,
        identity_file=form.identity_file.strip() or None,
        proxy_jump=form.proxy_jump.strip().replace(" ", "") or None,
        auth=form.auth or None,  # type: ignore[arg-type]
        free=FreeThresholds(form.max_memory_mib, form.max_utilization_pct)
        if form.own_free
        else None,
        nvidia_smi=form.nvidia_smi.strip() or None,
        disks=form.disks,
    )
    for field, problem in check_host(host).items():
        problems.setdefault(field, problem)
    if problems:
        return None, problems
    return replace(host, name=name), {}


def check_host(host: HostConfig) -> dict[str, str]:
    """Each field checked alone against the config rules: {field: problem}."""
    problems: dict[str, str] = {}
    bare = HostConfig(name="x")
    fields = ("name", "hostname", "port", "user", "identity_file", "proxy_jump", "auth")
    for field in (*fields, "nvidia_smi"):
        value = getattr(host, field)
        if value is None:
            continue
        if problem := _problem(replace(bare, **{field: value})):
            problems[field] = problem
    if host.free is not None:
        base = FreeThresholds()
        for field in ("max_memory_mib", "max_utilization_pct"):
            free = replace(base, **{field: getattr(host.free, field)})
            if problem := _problem(replace(bare, free=free)):
                problems[f"free.{field}"] = problem
    return problems


def _problem(host: HostConfig) -> str | None:
    doc = tomlkit.document()
    hosts = tomlkit.aot()
    hosts.append(host_table(host))
    doc["hosts"] = hosts
    try:
        parse_config(tomlkit.dumps(doc))
    except ConfigError as exc:
        return exc.problem
    return None
