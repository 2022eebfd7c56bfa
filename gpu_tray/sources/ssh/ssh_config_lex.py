"""The words of an ssh_config line and the patterns of Host and Match, as OpenSSH 9 reads them.

Ported from OpenSSH's readconf.c (`strdelim`), misc.c (`argv_split`) and match.c, so
that a line means here what it means to `ssh`: keywords are case-insensitive and may
be followed by one `=`; values may be quoted; `#` starts a comment only at the start
of a word (`User hal # admin` is `hal`, `User hal#x` is `hal#x`).
"""

from __future__ import annotations

import re
from functools import lru_cache

_WHITESPACE = " \t\r\n"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lowercase as C's tolower() does in ssh: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


class LexError(ValueError):
    """A line ssh would reject; str() is the reason, without file and line."""


def split_line(line: str) -> tuple[str, str] | None:
    """`(keyword lowercased, rest)`, or None for a blank or comment line.

    The rest starts at the first value; one `=` between keyword and value is allowed,
    with or without spaces around it."""
    # ssh reads lines as C strings: a NUL byte ends the line there.
    text = line.split("\x00", 1)[0].rstrip(_WHITESPACE + "\f").lstrip(_WHITESPACE)
    if not text or text.startswith("#"):
        return None
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            raise LexError("invalid quotes")
        keyword, rest = text[1:end], text[end + 1 :]
    else:
        m = re.match(r"[^ \t\r\n=\"]*", text)
        assert m is not None  # the pattern matches the empty string
        keyword, rest = m.group(0), text[m.end() :]
    rest = rest.lstrip(_WHITESPACE)
    if rest.startswith("="):
        rest = rest[1:].lstrip(_WHITESPACE)
    if not keyword:
        raise LexError("no keyword")
    return ascii_lower(keyword), rest


def split_args(text: str) -> list[str]:
    """The words of a value, like OpenSSH's argv_split(terminate_on_comment=1): spaces
    separate words, "double" and 'single' quotes group them, a backslash escapes a quote,
    a backslash or (outside quotes) a space, and `#` at the start of a word ends the line."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        word: list[str] = []
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n and (
                text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")
            ):
                word.append(text[i + 1])
                i += 2
                continue
            if not quote and c in " \t":
                break
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise LexError("invalid quotes")
        args.append("".join(word))
    return args


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def match_pattern(text: str, pattern: str) -> bool:
    """One pattern: `*` and `?` are wildcards, everything else is literal and case matters."""
    return _glob(pattern).fullmatch(text) is not None


def match_pattern_list(text: str, patterns: str, lower: bool) -> int:
    """A comma-separated list with `!` negations: 1 a match, 0 none, -1 a negated match
    (which wins over any positive one). `lower` lowercases the patterns, as ssh does for
    host names."""
    positive = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        if negated:
            sub = sub[1:]
        if lower:
            sub = ascii_lower(sub)
        if match_pattern(text, sub):
            if negated:
                return -1
            positive = 1
    return positive


def match_hostname(host: str, patterns: str) -> bool:
    """`Match host`/`originalhost`: the host lowercased against a pattern list."""
    return match_pattern_list(ascii_lower(host), patterns, lower=True) == 1
