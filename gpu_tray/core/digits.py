"""Numbers read from remote text, ASCII digits only.

`str.isdigit()` accepts '➍' and '²', and `int()` then raises; `int()` alone
accepts '٣' (Arabic-Indic three). A reading from nvidia-smi, ps or Slurm is
plain ASCII: anything else is not a number.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits 0-9, nothing else."""
    return _DIGITS.fullmatch(text) is not None


def int_or(text: str, default: int | None = None) -> int | None:
    """`text` (surrounding spaces allowed) as an int when it is ASCII digits, else `default`."""
    text = text.strip()
    return int(text) if is_digits(text) else default
