"""Turn what the settings dialog shows into edits of config.toml. Qt-free.

Only what changed is touched, through `config_edit`, so the user's comments
and layout stay: an unchanged host keeps its table as written, a renamed
host keeps its position and its watch rules follow the new name, and a value
left at what the file already says is not rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gpu_tray.core.config_edit import (
    Document,
    add_host,
    move_host,
    remove_host,
    replace_host,
    set_free,
    set_value,
)
from gpu_tray.core.settings import Config, FreeThresholds, HostConfig


@dataclass(frozen=True, slots=True)
class HostRow:
    """A host as the dialog lists it; `origin` is its name in the file (None: new)."""

    origin: str | None
    host: HostConfig


@dataclass(frozen=True, slots=True)
class General:
    poll_interval_s: float
    free: FreeThresholds
    confirm_polls: int
    sound: bool

    @classmethod
    def of(cls, config: Config) -> General:
        return cls(
            config.poll_interval_s, config.free, config.notify.confirm_polls, config.notify.sound
        )


def apply_changes(doc: Document, before: Config, rows: Sequence[HostRow], general: General) -> None:
    _apply_general(doc, General.of(before), general)
    _apply_hosts(doc, rows)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _apply_general(doc: Document, old: General, new: General) -> None:
    if new.poll_interval_s != old.poll_interval_s:
        set_value(doc, None, "poll_interval_s", _number(new.poll_interval_s))
    if new.free != old.free:
        set_free(doc, new.free)
    if new.confirm_polls != old.confirm_polls:
        set_value(doc, "notify", "confirm_polls", new.confirm_polls)
    if new.sound != old.sound:
        set_value(doc, "notify", "sound", new.sound)


def _tables(doc: Document) -> list:
    hosts = doc.get("hosts")
    return list(hosts) if hosts is not None else []


def _apply_hosts(doc: Document, rows: Sequence[HostRow]) -> None:
    in_file = [t.get("name") for t in _tables(doc)]
    kept = {r.origin for r in rows if r.origin is not None}
    for name in in_file:
        if name not in kept:
            remove_host(doc, name)
    in_file = [t.get("name") for t in _tables(doc)]
    # Renames go through placeholder names first, so that swapping two names
    # (a->b, b->a) never finds the wrong table.
    existing = [(i, r) for i, r in enumerate(rows) if r.origin in in_file]
    for i, r in existing:
        assert r.origin is not None
        replace_host(doc, r.origin, replace(r.host, name=_placeholder(i)))
    for i, r in existing:
        for table in _tables(doc):
            if table.get("name") == _placeholder(i):
                table["name"] = r.host.name
    renames = {r.origin: r.host.name for _, r in existing if r.origin != r.host.name}
    if renames and "watch" in doc:
        for rule in doc["watch"]:  # type: ignore[union-attr]
            if rule.get("host") in renames:
                rule["host"] = renames[rule["host"]]
    for r in rows:
        if r.origin not in in_file:
            add_host(doc, r.host)
    for index, r in enumerate(rows):
        names = [t.get("name") for t in _tables(doc)]
        if names.index(r.host.name) != index:
            move_host(doc, r.host.name, index)


def _placeholder(i: int) -> str:
    return f"gpu-tray-renaming-{i}"
