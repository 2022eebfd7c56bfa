"""Edit config.toml in place: keep the user's comments and layout, validate, write atomically.

Every writer (the tray's watch toggles, the settings dialog, `gpu-tray hosts`)
goes through `edit_config`, so a change that would make the file invalid is
refused before anything touches the disk, and a crash mid-write leaves the old
file whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.settings import (
    DEFAULT_CHANNELS,
    DEFAULT_DOWN_AFTER_S,
    Config,
    FreeThresholds,
    HostConfig,
    WatchSpec,
)

Document = tomlkit.TOMLDocument


def load_document(path: Path) -> Document:
    """The file as an editable document; an empty one when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, None, f"cannot read it ({exc})") from None
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        line = getattr(exc, "line", None)
        raise ConfigError(path, line, None, f"not valid TOML: {exc}") from None


def save_document(path: Path, doc: Document) -> Config:
    """Validate, then replace `path` atomically (temp file in the same folder + rename)."""
    text = tomlkit.dumps(doc)
    if text.strip():
        # One blank line before a table header and one newline at the end, however
        # tomlkit spaced the tables we added.
        text = re.sub(r"\n{3,}(?=\[)", "\n\n", text).rstrip("\n") + "\n"
    config = parse_config(text, path)  # raises ConfigError: nothing is written
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".toml.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return config


def edit_config(path: Path, change: Callable[[Document], None]) -> Config:
    """Load `path`, apply `change` to the document, validate and save. Returns the new config."""
    doc = load_document(path)
    change(doc)
    return save_document(path, doc)


def _aot(doc: Document, key: str) -> AoT:
    if key not in doc:
        doc.append(key, tomlkit.aot())
    value = doc[key]
    if not isinstance(value, AoT):
        raise ConfigError(None, None, key, f"must be an array of tables, written [[{key}]]")
    return value


def _free_table(free: FreeThresholds) -> Any:
    t = tomlkit.inline_table()
    t["max_memory_mib"] = free.max_memory_mib
    t["max_utilization_pct"] = free.max_utilization_pct
    return t


def host_table(host: HostConfig) -> Table:
    t = tomlkit.table()
    t["name"] = host.name
    for key in ("hostname", "port", "user", "identity_file", "proxy_jump", "auth"):
        value = getattr(host, key)
        if value is not None and value != "":
            t[key] = value
    if host.free is not None:
        t["free"] = _free_table(host.free)
    if host.nvidia_smi:
        t["nvidia_smi"] = host.nvidia_smi
    if host.disks:
        t["disks"] = list(host.disks)
    return t


def _host_index(doc: Document, name: str) -> int:
    for i, table in enumerate(_aot(doc, "hosts")):
        if table.get("name") == name:
            return i
    raise KeyError(name)


def _append_spaced(aot: AoT, table: Table) -> None:
    """Append with a blank line around the new table, as people write them (tomlkit
    would glue it to the previous table and to whatever follows)."""
    if len(aot) and not aot[-1].as_string().endswith("\n\n"):
        aot[-1].add(tomlkit.nl())
    table.add(tomlkit.nl())
    aot.append(table)


def add_host(doc: Document, host: HostConfig) -> None:
    _append_spaced(_aot(doc, "hosts"), host_table(host))


def replace_host(doc: Document, name: str, host: HostConfig) -> None:
    """Update the host called `name` in place, keeping its comments and position."""
    table = _aot(doc, "hosts")[_host_index(doc, name)]
    new = host_table(host)
    for key in list(table.keys()):
        if key not in new:
            del table[key]
    for key, value in new.items():
        if table.get(key) != value:
            table[key] = value


def _drop_if_empty(doc: Document, key: str) -> None:
    """An emptied array of tables would be written as `key = []` above the user's
    first comment: leave the key out instead (absent means empty)."""
    if key in doc and isinstance(doc[key], AoT) and len(doc[key]) == 0:
        del doc[key]


def remove_host(doc: Document, name: str) -> None:
    """Remove a host, and the watch rules that name it (they could never fire again)."""
    del _aot(doc, "hosts")[_host_index(doc, name)]
    _drop_if_empty(doc, "hosts")
    if "watch" in doc:
        rules = _aot(doc, "watch")
        for i in reversed(range(len(rules))):
            if rules[i].get("host") == name:
                del rules[i]
        _drop_if_empty(doc, "watch")


def move_host(doc: Document, name: str, new_index: int) -> None:
    hosts = _aot(doc, "hosts")
    i = _host_index(doc, name)
    tables = [hosts[j] for j in range(len(hosts))]
    table = tables.pop(i)
    tables.insert(max(0, min(new_index, len(tables))), table)
    for j in reversed(range(len(hosts))):
        del hosts[j]
    for t in tables:
        hosts.append(t)


def watch_table(spec: WatchSpec) -> Table:
    t = tomlkit.table()
    if spec.event == "host_down":
        t["event"] = spec.event
        if spec.host is not None:
            t["host"] = spec.host
        if spec.down_after_s != DEFAULT_DOWN_AFTER_S:
            t["down_after_s"] = spec.down_after_s
    else:
        if spec.host is not None:
            t["host"] = spec.host
        if spec.gpu is not None:
            t["gpu"] = spec.gpu
        if spec.event != "free":
            t["event"] = spec.event  # an idle-holder rule has a scope only
        else:
            t["count"] = spec.count
            if spec.model:
                t["model"] = spec.model
            if spec.min_free_memory_mib is not None:
                t["min_free_memory_mib"] = spec.min_free_memory_mib
    if spec.channels != DEFAULT_CHANNELS:
        t["channels"] = list(spec.channels)
    return t


def _spec_of(table: Table) -> WatchSpec:
    channels = table.get("channels")
    return WatchSpec(
        host=table.get("host"),
        gpu=table.get("gpu"),
        count=int(table.get("count", 1)),
        model=table.get("model"),
        min_free_memory_mib=table.get("min_free_memory_mib"),
        channels=tuple(dict.fromkeys(channels)) if channels else DEFAULT_CHANNELS,
        event=table.get("event", "free"),
        down_after_s=float(table.get("down_after_s", DEFAULT_DOWN_AFTER_S)),
    )


def add_watch(doc: Document, spec: WatchSpec) -> None:
    """Add a rule unless an identical one is already there."""
    rules = _aot(doc, "watch")
    if any(_spec_of(t).key == spec.key for t in rules):
        return
    rules.append(watch_table(spec))


def remove_watch(doc: Document, key: str) -> None:
    """Remove every rule whose `WatchSpec.key` is `key`."""
    if "watch" not in doc:
        return
    rules = _aot(doc, "watch")
    for i in reversed(range(len(rules))):
        if _spec_of(rules[i]).key == key:
            del rules[i]
    _drop_if_empty(doc, "watch")


def set_value(doc: Document, table: str | None, key: str, value: object) -> None:
    """Set a scalar such as `poll_interval_s` (table None) or `notify.confirm_polls`."""
    if table is None:
        doc[key] = value
        return
    if table not in doc:
        doc[table] = tomlkit.table()
    doc[table][key] = value  # type: ignore[index]


def set_free(doc: Document, free: FreeThresholds) -> None:
    set_value(doc, "free", "max_memory_mib", free.max_memory_mib)
    set_value(doc, "free", "max_utilization_pct", free.max_utilization_pct)


def channel_names(doc: Document) -> list[str]:
    if "channels" not in doc:
        return []
    return [str(t.get("name")) for t in _aot(doc, "channels")]


def add_channel(doc: Document, name: str) -> bool:
    """Add `[[channels]] name = NAME` (nothing secret). False when it is already there."""
    if name in channel_names(doc):
        return False
    if "channels" not in doc and doc.as_string().strip():
        doc.add(tomlkit.nl())  # a blank line after whatever table came last
    t = tomlkit.table()
    t["name"] = name
    _append_spaced(_aot(doc, "channels"), t)
    return True


def remove_channel(doc: Document, name: str) -> tuple[bool, int]:
    """Remove the channel and its name from every rule. A rule left with no channel at
    all could never tell anyone: it goes too. Returns (found, rules removed)."""
    found = False
    if "channels" in doc:
        tables = _aot(doc, "channels")
        for i in reversed(range(len(tables))):
            if tables[i].get("name") == name:
                del tables[i]
                found = True
        _drop_if_empty(doc, "channels")
    dropped = 0
    if "watch" in doc:
        rules = _aot(doc, "watch")
        for i in reversed(range(len(rules))):
            names = rules[i].get("channels")
            if names is None or name not in names:
                continue
            left = [n for n in names if n != name]
            if left:
                rules[i]["channels"] = left
            else:
                del rules[i]
                dropped += 1
        _drop_if_empty(doc, "watch")
    return found, dropped
