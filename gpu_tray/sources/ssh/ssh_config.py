"""~/.ssh/config read as OpenSSH 9 reads it, with the file and line of every value.

paramiko's SSHConfig ignores `Include`, keeps trailing comments in values and does
not lowercase HostName, so `ssh gpu7` and gpu-tray could reach different machines.
This is a port of what readconf.c does for the options gpu-tray uses:

- lines are read in order; a value is taken from the first active line that sets it
  (`IdentityFile` and `CertificateFile` accumulate), across included files too;
- `Host` patterns match the name as typed; `Match` takes host, originalhost, user,
  localuser, all, canonical and final (which asks for a second pass, as ssh does);
- `Include` takes globs, `~`, and paths relative to ~/.ssh; an included file starts
  in the including line's Host/Match state, and cannot change that state for the
  lines after the Include;
- `Match exec` is refused when ssh would run its command: gpu-tray never runs a
  shell string. (A `ProxyCommand` is refused later, when a host uses it.)

What is read is kept raw; tokens (`%h`, `~`, `${VAR}`) are expanded by the caller,
which knows the final host, port and user (see target.py).
"""

from __future__ import annotations

import getpass
import glob
import os
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gpu_tray.sources.ssh.errors import TargetError
from gpu_tray.sources.ssh.jumps import parse_hops
from gpu_tray.sources.ssh.ssh_config_lex import (
    LexError,
    ascii_lower,
    match_hostname,
    match_pattern,
    match_pattern_list,
    split_args,
    split_line,
)
from gpu_tray.sources.ssh.ssh_tokens import HOSTNAME_TOKENS, expand, tilde

MAX_INCLUDE_DEPTH = 16  # READCONF_MAX_DEPTH
MAX_FILE_BYTES = 1 << 20  # an ssh_config is a few KiB; this is not one
SYSTEM_DIR = Path("/etc/ssh")
#: Keywords whose every active line adds a value instead of the first one winning.
ACCUMULATE = frozenset({"identityfile", "certificatefile"})
#: Keywords that take exactly one value (ssh rejects extra words after them).
SINGLE = frozenset({"hostname", "user", "port", "connecttimeout", "hostkeyalias",
                    "identitiesonly", "identityfile", "certificatefile",
                    "canonicalizehostname"})  # fmt: skip
_WHITESPACE = " \t\r\n"


class SshConfigError(TargetError):
    """ssh_config that ssh would reject, or that asks gpu-tray to run a command.
    str() names the file and line; `file` and `line` say them for a caller."""

    def __init__(self, message: str, file: str, line: int) -> None:
        super().__init__(f"{file}, line {line}: {message}")
        self.reason = message
        self.file = file
        self.line = line


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: a file and line, or (line 0) a place like config.toml."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


#: The origin of a host name that no HostName changed: the name itself.
NAME_GIVEN = Origin("")


@dataclass(frozen=True, slots=True)
class Value:
    args: tuple[str, ...]  # the words, unquoted, comment dropped
    raw: str  # the rest of the line as written (ProxyCommand and ProxyJump use it)
    origin: Origin

    @property
    def first(self) -> str:
        return self.args[0] if self.args else ""


@dataclass(slots=True)
class SshOptions:
    """What the config says for one host name, before tokens are expanded."""

    host_arg: str  # the name as given (ssh's %n)
    hostname: str  # the final host name: HostName with %h expanded, lowercased
    values: dict[str, Value] = field(default_factory=dict)
    lists: dict[str, list[Value]] = field(default_factory=dict)

    def get(self, keyword: str) -> Value | None:
        return self.values.get(keyword)

    def all(self, keyword: str) -> list[Value]:
        return self.lists.get(keyword, [])


class SshConfig:
    """A user ssh_config: a file (re-read on every lookup) or a text (for tests)."""

    def __init__(
        self,
        path: Path | None = None,
        text: str | None = None,
        home: Path | None = None,
        system_path: Path | None = None,
    ) -> None:
        self.path = path
        self.text = text
        self.home = home
        #: /etc/ssh/ssh_config, read after the user's file as ssh does (not with `-F`).
        self.system_path = system_path

    @classmethod
    def from_path(cls, path: Path | str) -> SshConfig:
        return cls(path=Path(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<ssh_config>") -> SshConfig:
        return cls(path=Path(name), text=text)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<ssh_config>"

    def home_dir(self) -> Path:
        return self.home if self.home is not None else Path.home()

    def lookup(
        self,
        host_arg: str,
        preset: Mapping[str, Value] | None = None,
        local_user: str | None = None,
    ) -> SshOptions:
        """The options for `ssh host_arg`. `preset` holds values given outside the file
        (config.toml), which win like ssh's command-line options. Raises SshConfigError."""
        opts = SshOptions(host_arg=host_arg, hostname=host_arg)
        for keyword, value in (preset or {}).items():
            _set(opts, keyword, value)
        texts: dict[str, list[str]] = {}
        first = _Pass(self, opts, texts, host_arg, host_arg, False, local_user or getpass.getuser())
        first.run()
        hostname = opts.values.get("hostname")
        final_host = host_arg
        if hostname is not None:
            try:
                final_host = expand(hostname.first, {"h": host_arg}, HOSTNAME_TOKENS)
            except LexError as exc:
                raise SshConfigError(str(exc), hostname.origin.file, hostname.origin.line) from None
        opts.hostname = ascii_lower(final_host)
        canon = opts.values.get("canonicalizehostname")
        if first.want_final or (canon is not None and ascii_lower(canon.first) != "no"):
            # ssh's second pass: Host and Match host now see the final name.
            origin = hostname.origin if hostname is not None else NAME_GIVEN
            opts.values["hostname"] = Value((opts.hostname,), opts.hostname, origin)
            _Pass(self, opts, texts, opts.hostname, host_arg, True, first.local_user).run()
        return opts

    def host_names(self) -> list[str]:
        """Concrete `Host` names in file order, included files too (where the Include
        stands), without wildcards or negations: what "Import from ~/.ssh/config" lists."""
        names: list[str] = []
        seen: set[str] = set()

        def visit(path: str, at: Origin | None, depth: int) -> None:
            for number, line in enumerate(self._lines(path, {}, at), start=1):
                try:
                    parsed = split_line(line)
                    if parsed is None:
                        continue
                    keyword, rest = parsed
                    args = split_args(rest)
                except LexError:
                    continue
                if keyword == "host":
                    for name in args:
                        if name and not any(c in name for c in "*?!") and name not in names:
                            names.append(name)
                elif keyword == "include" and depth < MAX_INCLUDE_DEPTH:
                    try:
                        included_paths = self._include_paths(args)
                    except LexError:
                        continue
                    for included in included_paths:
                        if included not in seen:
                            seen.add(included)
                            visit(included, Origin(path, number), depth + 1)

        visit(self.name, None, 0)
        return names

    # -- files -------------------------------------------------------------------------------

    def _lines(self, path: str, cache: dict[str, list[str]], at: Origin | None) -> list[str]:
        """The lines of a file; [] when it does not exist. `at` is the Include line that
        names it (None for the main file), for the message when it cannot be read."""
        if path in cache:
            return cache[path]
        if path == self.name and self.text is not None:
            lines = self.text.split("\n")
        else:
            try:
                lines = _read_lines(path)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                lines = []
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                where = at or Origin(path)
                raise SshConfigError(f"cannot read {path}: {_reason(exc)}", where.file,
                                     where.line) from None  # fmt: skip
        cache[path] = lines
        return lines

    def _include_paths(self, args: list[str], system: bool = False) -> list[str]:
        """Each argument: `~` expanded, relative ones under ~/.ssh (/etc/ssh for the
        system-wide file), globbed and sorted; a pattern that matches nothing stays as
        written (and is then skipped as missing)."""
        home = self.home_dir()
        out: list[str] = []
        for arg in args:
            if system and arg.startswith("~"):
                raise LexError(f"Include {arg!r}: ~ is not allowed in the system-wide ssh_config")
            path = tilde(arg, home) if arg.startswith("~") else arg  # ~nobody: ssh stops too
            if not path.startswith("/"):
                path = str((SYSTEM_DIR if system else home / ".ssh") / path)
            out.extend(sorted(glob.glob(path)) or [path])
        return out


def _read_lines(path: str) -> list[str]:
    """A config file's lines. Only regular files are read (an `Include /dev/*` must not
    block on a device), and at most MAX_FILE_BYTES of them."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat says what it is.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    # Lines end at \n only, as for ssh's getline(): a lone \r is whitespace.
    return data.decode("utf-8").split("\n")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _set(opts: SshOptions, keyword: str, value: Value) -> None:
    if keyword in ACCUMULATE:
        values = opts.lists.setdefault(keyword, [])
        if all(v.first != value.first for v in values):  # ssh drops duplicates
            values.append(value)
    elif keyword not in opts.values:
        opts.values[keyword] = value


class _Pass:
    """One reading of the config for one host name (readconf.c's read_config_file)."""

    def __init__(
        self,
        config: SshConfig,
        opts: SshOptions,
        texts: dict[str, list[str]],
        host: str,
        original_host: str,
        final: bool,
        local_user: str,
    ) -> None:
        self.config = config
        self.opts = opts
        self.texts = texts
        self.host = host  # what Host patterns match: the name given, or the final name
        self.original_host = original_host
        self.final = final
        self.local_user = local_user
        self.want_final = False
        self.system = False  # reading /etc/ssh/ssh_config (relative Includes are under /etc/ssh)

    def run(self) -> None:
        self._read(self.config.name, None, depth=0, active=True, never=False)
        if self.config.system_path is not None:
            self.system = True
            self._read(str(self.config.system_path), None, depth=0, active=True, never=False)

    def _read(self, path: str, at: Origin | None, depth: int, active: bool, never: bool) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            assert at is not None
            raise SshConfigError("too many nested Includes (a loop?)", at.file, at.line)
        for number, line in enumerate(self.config._lines(path, self.texts, at), start=1):
            origin = Origin(path, number)
            try:
                active = self._line(line, origin, depth, active, never)
            except LexError as exc:
                raise SshConfigError(str(exc), path, number) from None

    def _line(self, line: str, origin: Origin, depth: int, active: bool, never: bool) -> bool:
        """Apply one line; returns whether the lines after it are active."""
        parsed = split_line(line)
        if parsed is None:
            return active
        keyword, rest = parsed
        if not rest:
            raise LexError(f"no value after {keyword!r}")
        args = split_args(rest)
        if keyword == "host":
            return False if never else self._host(args)
        if keyword == "match":
            matched = self._match(rest, origin)
            return matched and not never
        if keyword == "include":
            for path in self.config._include_paths(args, self.system):
                self._read(path, origin, depth + 1, active, never or not active)
            return active
        if active:
            self._option(keyword, args, rest, origin)
        return active

    def _host(self, args: list[str]) -> bool:
        matched = False
        for pattern in args:
            if not pattern:
                raise LexError("an empty Host pattern")
            negated = pattern.startswith("!")
            if match_pattern(self.host, pattern[1:] if negated else pattern):
                if negated:
                    return False
                matched = True
        return matched

    def _option(self, keyword: str, args: list[str], rest: str, origin: Origin) -> None:
        opts = self.opts
        if keyword in SINGLE and len(args) != 1:
            raise LexError(f"{keyword!r} takes one value, not {len(args)}")
        if keyword == "port":
            parse_port(args[0])
        elif keyword == "proxycommand":
            # Whichever of ProxyJump and ProxyCommand comes first wins (readconf.c).
            if "proxyjump" in opts.values:
                return
        elif keyword == "proxyjump":
            raw = rest.split("#", 1)[0].rstrip(_WHITESPACE)
            _check_jump(raw)
            if "proxyjump" in opts.values or "proxycommand" in opts.values:
                return
            opts.values["proxyjump"] = Value((raw,), raw, origin)
            if ascii_lower(raw) != "none":
                opts.values["proxycommand"] = Value(("none",), "none", origin)
            return
        _set(opts, keyword, Value(tuple(args), rest, origin))

    def _match(self, condition: str, origin: Origin) -> bool:
        """readconf.c's match_cfg_line. `exec` is refused where ssh would run it."""
        user = self.opts.values.get("user")
        ruser = user.first if user is not None else self.local_user
        if self.final:
            host = self.opts.hostname
        elif (hostname := self.opts.values.get("hostname")) is not None:
            host = expand(hostname.first, {"h": self.host}, HOSTNAME_TOKENS)
        else:
            host = self.host
        result, attributes, rest = True, 0, condition
        while True:
            attrib, rest = _strdelim(rest)
            if not attrib or attrib.startswith("#"):
                break
            negate = attrib.startswith("!")
            name = ascii_lower(attrib[1:] if negate else attrib)
            if name == "all":
                following, _ = _strdelim(rest)
                if attributes > 1 or (following and not following.startswith("#")):
                    raise LexError(f"'{attrib}' cannot be combined with other Match attributes")
                return result and not negate
            attributes += 1
            if name in ("canonical", "final"):
                if name == "final":
                    self.want_final = True
                if self.final == negate:
                    result = False
                continue
            arg, rest = _strdelim(rest)
            if not arg or arg.startswith("#"):
                raise LexError(f"Match {attrib} needs a value")
            if name == "host":
                matched = match_hostname(host, arg)
            elif name == "originalhost":
                matched = match_hostname(self.original_host, arg)
            elif name == "user":
                matched = match_pattern_list(ruser, arg, lower=False) == 1
            elif name == "localuser":
                matched = match_pattern_list(self.local_user, arg, lower=False) == 1
            elif name == "exec":
                if not result:
                    continue  # ssh does not run it when an earlier criterion failed
                raise LexError(
                    "Match exec runs a shell command to decide, and gpu-tray never runs "
                    "shell commands; use Match host/user/localuser, or a Host block"
                )
            else:
                raise LexError(f"unsupported Match attribute {attrib!r}")
            if matched == negate:
                result = False
        if attributes == 0:
            raise LexError("Match needs at least one attribute")
        return result


def _strdelim(text: str | None) -> tuple[str | None, str | None]:
    """readconf.c's strdelim: the next word of a Match line, split at spaces or one `=`,
    with "double quotes". (None, None) at the end or on an unclosed quote."""
    if text is None:
        return None, None
    i = next((i for i, c in enumerate(text) if c in _WHITESPACE + '"='), -1)
    if i < 0:
        return text, None
    c = text[i]
    if c == '"':
        end = text.find('"', i + 1)
        if end < 0:
            return None, None
        return text[:i] + text[i + 1 : end], text[end + 1 :].lstrip(_WHITESPACE)
    rest = text[i + 1 :].lstrip(_WHITESPACE)
    if c != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(_WHITESPACE)
    return text[:i], rest


def parse_port(text: str) -> int:
    """A port number, or a service name as ssh's a2port() takes it."""
    if text.isascii() and text.isdigit():
        port = int(text)
    else:
        try:
            port = socket.getservbyname(text, "tcp")
        except (OSError, UnicodeError, ValueError):  # ValueError: a NUL in the name
            port = 0
    if not 0 < port < 65536:
        raise LexError(f"bad port {text!r}")
    return port


def _check_jump(raw: str) -> None:
    """Every hop of an active ProxyJump line must parse, not only the first (as in ssh)."""
    if ascii_lower(raw) != "none":
        try:
            parse_hops(raw)
        except ValueError as exc:
            raise LexError(str(exc)) from None
