"""Load and validate config.toml (public interface: see DESIGN.md "Configuration").

Every error names the file, the key and the line, because the person reading
it has the file open in an editor and wants to jump there.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from gpu_tray.core.settings import (
    DEFAULT_CHANNELS,
    DEFAULT_DOWN_AFTER_S,
    DESKTOP,
    ChannelConfig,
    Config,
    FreeThresholds,
    HostConfig,
    IdleSettings,
    NotifyConfig,
    SourceConfig,
    WatchSpec,
)

APP = "gpu-tray"
ENV_CONFIG = "GPU_TRAY_CONFIG"

_SECRET_WORDS = ("password", "passphrase", "secret", "token")
_NAME_OK = re.compile(r"^[A-Za-z0-9._@:%+\-]+$")
_CHANNEL_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_EVENTS = ("free", "host_down", "idle_holder")
#: Keys of a free-GPU rule that mean nothing to a rule about an event.
_GPU_RULE_KEYS = ("gpu", "count", "model", "min_free_memory_mib")


def check_channel_name(value: str) -> str | None:
    """None when `value` can name a [[channels]] entry, else the problem in words."""
    if value == DESKTOP:
        return f'"{DESKTOP}" is the desktop\'s own channel: pick another name'
    if not _CHANNEL_NAME_OK.match(value):
        return (
            f"{value!r} is not a channel name (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64)"
        )
    return None


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


def resolve_config_path(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """`--config PATH`, then $GPU_TRAY_CONFIG, then the platform's config dir."""
    if cli_path:
        return Path(cli_path).expanduser()
    if env := os.environ.get(ENV_CONFIG):
        return Path(env).expanduser()
    return default_config_path()


class ConfigError(Exception):
    """A config problem a person can fix; `str()` is the whole message."""

    def __init__(self, path: Path | None, line: int | None, key: str | None, problem: str):
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = str(path) if path else "config"
        if line:
            where += f", line {line}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


def load_config(path: Path) -> Config:
    """Read and validate `path`. Raises ConfigError (never anything else) on bad input."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, None, f"cannot read it ({exc})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(m.group(1)) if m else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(path, line, None, f"not valid TOML: {problem}") from None
    return _Validator(data, _LineFinder(text), path).config()


class _LineFinder:
    """Maps a key path like ("hosts", 1, "port") to its line in the TOML text.

    tomllib keeps no positions, so we scan the text for table headers and keys.
    Good enough for the files people write by hand; falls back to the table's line.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, int | None], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        counts: dict[str, int] = {}
        current: tuple[str, int | None] = ("", None)
        for number, line in enumerate(text.splitlines(), start=1):
            if m := self._HEADER.match(line):
                name = m.group(2).strip().strip("\"'")
                if m.group(1) == "[[":
                    counts[name] = counts.get(name, -1) + 1
                    current = (name, counts[name])
                else:
                    current = (name, None)
                self.tables.setdefault(current, number)
            elif m := self._KEY.match(line):
                self.keys.setdefault((*current, m.group(1).strip("\"'")), number)

    def line(self, table: str, index: int | None, key: str | None = None) -> int | None:
        if key is not None and (found := self.keys.get((table, index, key))):
            return found
        if (
            table
            and "." not in table
            and index is None
            and (found := self.keys.get(("", None, table)))
        ):
            return found  # an inline table such as `free = { ... }` at top level
        return self.tables.get((table, index))


class _Validator:
    def __init__(self, data: dict[str, Any], lines: _LineFinder, path: Path | None) -> None:
        self.data, self.lines, self.path = data, lines, path

    def fail(self, table: str, index: int | None, key: str | None, problem: str) -> ConfigError:
        name = table
        if index is not None:
            name += f"[{index}]"
        if key:
            name = f"{name}.{key}" if name else key
        return ConfigError(self.path, self.lines.line(table, index, key), name or None, problem)

    def config(self) -> Config:
        d = self.data
        self._refuse_secrets(d, "", None)
        self._known(d, "", None, _TOP_KEYS)
        interval = self._number(d, "", None, "poll_interval_s", 10.0, minimum=1.0)
        free = self._free(d.get("free", {}), "free", None)
        hosts = tuple(self._host(h, i) for i, h in enumerate(self._array(d, "hosts")))
        names = [h.name for h in hosts]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail("hosts", i, "name", f"duplicate host name {name!r}")
        sources = tuple(self._source(s, i) for i, s in enumerate(self._array(d, "sources")))
        notify = self._notify(d.get("notify", {}))
        channels = tuple(self._channel(c, i) for i, c in enumerate(self._array(d, "channels")))
        channel_names = [c.name for c in channels]
        for i, name in enumerate(channel_names):
            if name in channel_names[:i]:
                raise self.fail("channels", i, "name", f"duplicate channel name {name!r}")
        watch = tuple(
            self._watch(w, i, channel_names) for i, w in enumerate(self._array(d, "watch"))
        )
        idle = self._idle(d.get("idle", {}))
        return Config(
            poll_interval_s=interval,
            free=free,
            hosts=hosts,
            sources=sources,
            notify=notify,
            watch=watch,
            channels=channels,
            idle=idle,
            path=self.path,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _refuse_secrets(self, node: Any, table: str, index: int | None) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if any(word in key.lower() for word in _SECRET_WORDS):
                    raise self.fail(
                        table,
                        index,
                        key,
                        "secrets never go in config.toml; store it in the system keyring "
                        "with `gpu-tray password set HOST` or the Settings dialog",
                    )
                child = key if not table else f"{table}.{key}"
                self._refuse_secrets(value, child if index is None else table, index)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self._refuse_secrets(item, table, i)

    def _known(self, d: Mapping[str, Any], table: str, index: int | None, keys: set[str]) -> None:
        for key in d:
            if key not in keys:
                raise self.fail(
                    table, index, key, f"unknown key (expected one of: {', '.join(sorted(keys))})"
                )

    def _array(self, d: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = d.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.fail("", None, key, f"must be an array of tables, written [[{key}]]")
        return value

    def _table(self, value: Any, table: str, index: int | None, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(table, index, key, f"must be a table, got {_show(value)}")
        return value

    def _number(
        self,
        d: Mapping[str, Any],
        table: str,
        index: int | None,
        key: str,
        default: float,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(table, index, key, f"must be a number, got {_show(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(table, index, key, f"must be {_range(minimum, maximum)}, got {value}")
        return float(value)

    def _int(
        self,
        d: Mapping[str, Any],
        table: str,
        index: int | None,
        key: str,
        default: int | None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = d.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                table,
                index,
                key,
                f"must be an integer {_range(minimum, maximum)}, got {_show(value)}",
            )
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(
                table, index, key, f"must be an integer {_range(minimum, maximum)}, got {value}"
            )
        return value

    def _str(
        self,
        d: Mapping[str, Any],
        table: str,
        index: int | None,
        key: str,
        check: Callable[[str], str | None] | None = None,
    ) -> str | None:
        value = d.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(table, index, key, f"must be a non-empty string, got {_show(value)}")
        if check and (problem := check(value)):
            raise self.fail(table, index, key, problem)
        return value

    def _free(self, d: Any, table: str, index: int | None) -> FreeThresholds:
        """`[free]` at the top, or `free = { ... }` inside a [[hosts]] entry."""
        if index is None:
            d = self._table(d, "", None, "free")
            where, prefix = "free", ""
        else:
            d = self._table(d, table, index, "free")
            where, prefix = table, "free."
        for key in d:
            if key not in ("max_memory_mib", "max_utilization_pct"):
                raise self.fail(
                    where,
                    index,
                    prefix + key,
                    "unknown key (expected one of: max_memory_mib, max_utilization_pct)",
                )
        base = FreeThresholds()
        try:
            mem = self._int(d, where, index, "max_memory_mib", base.max_memory_mib, 0)
            util = self._int(
                d, where, index, "max_utilization_pct", base.max_utilization_pct, 0, 100
            )
        except ConfigError as exc:
            if not prefix:
                raise
            raise ConfigError(
                self.path,
                self.lines.line(table, index, "free"),
                f"{table}[{index}].{prefix}{exc.key.rsplit('.', 1)[-1] if exc.key else ''}",
                exc.problem,
            ) from None
        return FreeThresholds(max_memory_mib=mem or 0, max_utilization_pct=util or 0)

    def _host(self, h: Mapping[str, Any], i: int) -> HostConfig:
        t = "hosts"
        self._known(
            h,
            t,
            i,
            {
                "name",
                "hostname",
                "port",
                "user",
                "identity_file",
                "proxy_jump",
                "auth",
                "free",
                "nvidia_smi",
                "disks",
            },
        )
        if "name" not in h:
            raise self.fail(t, i, None, "every [[hosts]] needs a name")
        name = self._str(h, t, i, "name", _check_name)
        auth = h.get("auth")
        if auth is not None and auth not in ("agent", "key", "password"):
            raise self.fail(
                t, i, "auth", f'must be "agent", "key" or "password", got {_show(auth)}'
            )
        return HostConfig(
            name=name or "",
            hostname=self._str(h, t, i, "hostname", _check_name),
            port=self._int(h, t, i, "port", None, 1, 65535),
            user=self._str(h, t, i, "user", _check_name),
            identity_file=self._str(h, t, i, "identity_file"),
            proxy_jump=self._str(h, t, i, "proxy_jump", _check_jump),
            auth=auth,
            free=self._free(h["free"], t, i) if "free" in h else None,
            nvidia_smi=self._str(h, t, i, "nvidia_smi", _check_remote_path),
            disks=self._disks(h, t, i),
        )

    def _disks(self, h: Mapping[str, Any], t: str, i: int) -> tuple[str, ...]:
        """`disks = ["/home", "/scratch"]`: absolute paths, each on one line of the
        poll's stdin (so no control characters), kept literally otherwise."""
        value = h.get("disks", [])
        if not isinstance(value, list):
            raise self.fail(
                t, i, "disks", f"must be an array of absolute paths, got {_show(value)}"
            )
        for path in value:
            if not isinstance(path, str) or not path.startswith("/"):
                raise self.fail(t, i, "disks", f"{_show(path)} is not an absolute path")
            if any(ord(c) < 32 or ord(c) == 127 for c in path):
                raise self.fail(
                    t, i, "disks", f"{path!r} has a control character (tab, newline, ...)"
                )
        return tuple(dict.fromkeys(value))

    def _source(self, s: Mapping[str, Any], i: int) -> SourceConfig:
        t = "sources"
        kind = s.get("kind")
        if kind not in ("prometheus", "slurm"):
            raise self.fail(t, i, "kind", f'must be "prometheus" or "slurm", got {_show(kind)}')
        name = self._str(s, t, i, "name", _check_name)
        options = {k: v for k, v in s.items() if k not in ("kind", "name", "url", "login")}
        if kind == "prometheus":
            self._known(s, t, i, {"kind", "name", "url", *_PROMETHEUS_OPTIONS})
            url = self._str(s, t, i, "url", _check_url)
            if url is None:
                raise self.fail(t, i, "url", 'a prometheus source needs url = "http://..."')
            self._prometheus_options(s, i)
            return SourceConfig(kind="prometheus", url=url, name=name, options=options)
        self._known(s, t, i, {"kind", "name", "login", *_SLURM_OPTIONS})
        login = self._str(s, t, i, "login", _check_name)
        if login is None:
            raise self.fail(t, i, "login", 'a slurm source needs login = "login-node"')
        self._number(s, t, i, "timeout_s", 30.0, minimum=1.0, maximum=600.0)
        parts = s.get("partitions")
        if parts is not None and (
            not isinstance(parts, list)
            or not parts
            or not all(isinstance(p, str) and _NAME_OK.match(p) for p in parts)
        ):
            raise self.fail(
                t,
                i,
                "partitions",
                f'must be a list of partition names like ["gpu"], got {_show(parts)}',
            )
        return SourceConfig(kind="slurm", login=login, name=name, options=options)

    def _prometheus_options(self, s: Mapping[str, Any], i: int) -> None:
        t = "sources"
        auth = s.get("auth", "none")
        if auth not in ("none", "bearer", "basic"):
            raise self.fail(t, i, "auth", f'must be "none", "bearer" or "basic", got {_show(auth)}')
        username = self._str(s, t, i, "username", _check_name)
        if auth == "basic" and username is None:
            raise self.fail(t, i, "auth", 'auth = "basic" needs username = "..." in the same entry')
        if username is not None and auth != "basic":
            raise self.fail(t, i, "username", 'is only used with auth = "basic"')
        self._number(s, t, i, "timeout_s", 10.0, minimum=0.5, maximum=600.0)
        self._number(s, t, i, "stale_after_s", 90.0, minimum=1.0)
        self._str(s, t, i, "host_label", _check_label)
        self._str(s, t, i, "ca_file")

    def _notify(self, d: Any) -> NotifyConfig:
        d = self._table(d, "", None, "notify")
        self._known(d, "notify", None, {"confirm_polls", "sound"})
        sound = d.get("sound", False)
        if not isinstance(sound, bool):
            raise self.fail("notify", None, "sound", f"must be true or false, got {_show(sound)}")
        return NotifyConfig(
            confirm_polls=self._int(d, "notify", None, "confirm_polls", 2, 1, 1000) or 2,
            sound=sound,
        )

    def _idle(self, d: Any) -> IdleSettings:
        d = self._table(d, "", None, "idle")
        self._known(d, "idle", None, {"max_utilization_pct", "after_min", "remind_after_min"})
        base = IdleSettings()
        util = self._int(d, "idle", None, "max_utilization_pct", base.max_utilization_pct, 0, 100)
        after = self._number(d, "idle", None, "after_min", base.after_min, minimum=1.0)
        remind = None
        if "remind_after_min" in d:
            remind = self._number(d, "idle", None, "remind_after_min", 0.0, minimum=1.0)
        return IdleSettings(
            max_utilization_pct=base.max_utilization_pct if util is None else util,
            after_min=after,
            remind_after_min=remind,
        )

    def _channel(self, c: Mapping[str, Any], i: int) -> ChannelConfig:
        t = "channels"
        if "url" in c:
            raise self.fail(
                t,
                i,
                "url",
                "a channel's URL is a secret and never goes in config.toml; store it in the "
                "system keyring with `gpu-tray channel add NAME` or the Settings dialog",
            )
        self._known(c, t, i, {"name"})
        if "name" not in c:
            raise self.fail(t, i, None, "every [[channels]] needs a name")
        return ChannelConfig(name=self._str(c, t, i, "name", check_channel_name) or "")

    def _watch(self, w: Mapping[str, Any], i: int, channel_names: list[str]) -> WatchSpec:
        t = "watch"
        self._known(
            w,
            t,
            i,
            {
                "host",
                "gpu",
                "count",
                "model",
                "min_free_memory_mib",
                "channels",
                "event",
                "down_after_s",
            },
        )
        channels = self._watch_channels(w, i, channel_names)
        event = w.get("event", "free")
        if event not in _EVENTS:
            raise self.fail(
                t, i, "event", f'must be "free", "host_down" or "idle_holder", got {_show(event)}'
            )
        if event == "host_down":
            for key in _GPU_RULE_KEYS:
                if key in w:
                    raise self.fail(t, i, key, f'is not used with event = "{event}"')
            return WatchSpec(
                host=self._str(w, t, i, "host"),
                channels=channels,
                event=event,
                down_after_s=self._number(
                    w, t, i, "down_after_s", DEFAULT_DOWN_AFTER_S, minimum=1.0
                ),
            )
        if "down_after_s" in w:
            raise self.fail(t, i, "down_after_s", 'is only used with event = "host_down"')
        if event == "idle_holder":
            for key in ("count", "model", "min_free_memory_mib"):
                if key in w:
                    raise self.fail(
                        t, i, key, 'is not used with event = "idle_holder" (only host and gpu)'
                    )
        gpu = self._int(w, t, i, "gpu", None, 0)
        host = self._str(w, t, i, "host")
        if gpu is not None and host is None:
            raise self.fail(t, i, "gpu", 'a GPU index needs a host = "..." in the same rule')
        return WatchSpec(
            host=host,
            gpu=gpu,
            count=self._int(w, t, i, "count", 1, 1) or 1,
            model=self._str(w, t, i, "model"),
            min_free_memory_mib=self._int(w, t, i, "min_free_memory_mib", None, 0),
            channels=channels,
            event=event,
        )

    def _watch_channels(
        self, w: Mapping[str, Any], i: int, channel_names: list[str]
    ) -> tuple[str, ...]:
        value = w.get("channels")
        if value is None:
            return DEFAULT_CHANNELS
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise self.fail(
                "watch",
                i,
                "channels",
                'must be a list of channel names like ["desktop", "lab-slack"], '
                f"got {_show(value)}",
            )
        known = [DESKTOP, *channel_names]
        for name in value:
            if name not in known:
                raise self.fail(
                    "watch",
                    i,
                    "channels",
                    f"unknown channel {name!r} (known: {', '.join(known)}; add one with "
                    "`gpu-tray channel add NAME`)",
                )
        return tuple(dict.fromkeys(value))


_TOP_KEYS = {"poll_interval_s", "free", "hosts", "sources", "notify", "watch", "channels", "idle"}
_PROMETHEUS_OPTIONS = ("auth", "username", "timeout_s", "stale_after_s", "host_label", "ca_file")
_SLURM_OPTIONS = ("timeout_s", "partitions")


def _check_label(value: str) -> str | None:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
        return f"{value!r} is not a Prometheus label name"
    return None


def _check_name(value: str) -> str | None:
    if not _NAME_OK.match(value):
        return f"{value!r} has characters that are not allowed in a host or user name"
    return None


def _check_jump(value: str) -> str | None:
    for hop in value.split(","):
        if not hop or not _NAME_OK.match(hop):
            return f"{value!r} is not a comma-separated list of hosts ([user@]host[:port])"
    return None


def _check_remote_path(value: str) -> str | None:
    if any(ch < " " or ch == "\x7f" for ch in value):
        return f"{value!r} has a control character (a tab or a line break) in it"
    if not value.startswith("/"):
        return (
            "must be an absolute path on the host, such as "
            f"'/usr/local/nvidia/bin/nvidia-smi', got {value!r}"
        )
    if value.endswith("/"):
        return f"must be the path of the program itself, not of a folder, got {value!r}"
    return None


def _check_url(value: str) -> str | None:
    if not re.match(r"^https?://[^\s/]+", value):
        return f"{value!r} is not an http:// or https:// URL"
    return None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if not isinstance(value, Mapping | list) else type(value).__name__


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f">= {minimum:g}"
    if maximum is not None:
        return f"<= {maximum:g}"
    return ""
