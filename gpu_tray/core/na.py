"""The single "not available" value.

nvidia-smi, DCGM and friends report unknown readings in many spellings
(`[N/A]`, `[Not Supported]`, `[Unknown Error]`, ...). They all become `NA`,
which is falsy, prints as ``N/A``, is ``null`` in JSON, and never compares
as less or greater than a number, so "unknown" can never be mistaken for 0.
"""

from __future__ import annotations

import math
from typing import Any, Final, TypeVar

T = TypeVar("T")


class NotAvailable:
    __slots__ = ()
    _instance: NotAvailable | None = None

    def __new__(cls) -> NotAvailable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "N/A"

    def __format__(self, spec: str) -> str:
        return format("N/A", _string_spec(spec))

    def __bool__(self) -> bool:
        return False

    def __float__(self) -> float:
        return math.nan

    def __hash__(self) -> int:
        return hash("gpu-tray.NA")

    def __eq__(self, other: object) -> bool:
        return other is self

    def __reduce__(self) -> str:
        return "NA"

    # Arithmetic with an unknown stays unknown.
    def _unknown(self, *_: Any) -> NotAvailable:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = _unknown
    __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _unknown
    __neg__ = __abs__ = _unknown

    # An unknown reading is neither above nor below a threshold.
    def _never(self, _: Any) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _never


def _string_spec(spec: str) -> str:
    """Keep width/alignment from a numeric format spec, drop the numeric parts."""
    kept = []
    for ch in spec:
        if ch in ".fdeg%n,_" or (kept and kept[-1] == "." and ch.isdigit()):
            break
        kept.append(ch)
    return "".join(kept).rstrip("+- ")


NA: Final = NotAvailable()

Number = int | float


def is_na(value: object) -> bool:
    return value is NA


def or_none(value: T | NotAvailable) -> T | None:
    """For JSON and SQL: NA becomes None."""
    return None if value is NA else value  # type: ignore[return-value]


def from_none(value: T | None) -> T | NotAvailable:
    return NA if value is None else value
