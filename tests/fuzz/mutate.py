"""Hypothesis strategies that mutate real inputs: the fixtures, edited the way the
wild edits them (cut short, lines lost or repeated, placeholders where numbers were,
non-ASCII digits, stray separators)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

# What nvidia-smi, DCGM, Slurm and people put where we expect something else.
TOKENS = (
    "[N/A]",
    "N/A",
    "[Not Supported]",
    "[Insufficient Permissions]",
    "[GPU requires reset]",
    "[Unknown Error]",
    "[GPU is lost]",
    "[Not Found]",
    "(null)",
    "Enabled",
    "Disabled",
    ",",
    ", ",
    "\n",
    "\r\n",
    "\t",
    " ",
    "",
    "=",
    ":",
    ";",
    "|",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "\\",
    "#",
    "\x00",
    "\x7f",
    "➍",
    "٣",
    "²",
    "é",
    "-1",
    "0",
    "007",
    "1e999",
    "-1e999",
    "nan",
    "NaN",
    "+Inf",
    "inf",
    "1_000",
    "0x1F",
    "99999999999999999999999999",
    "4294967295",
    "3.5",
    "-",
    "0-",
    "-0",
    "[0-99999999]",
    "IDX:",
    "gpu:",
    "gres/gpu=",
    "GPU 00000000:00:09.0",
    "MIG Device",
    "Processes",
    "No running processes found",
    "WARNING: infoROM is corrupted",
)


# What may stand where a number stood.
NUMBERISH = (
    "➍",
    "٣",
    "²",
    "[N/A]",
    "[Insufficient Permissions]",
    "[GPU requires reset]",
    "-",
    "-1",
    "1e999",
    "nan",
    "99999999999999999999999999",
    "",
)
_DIGITS = "0123456789"


@st.composite
def mutated(draw: st.DrawFn, bases: Sequence[str], max_edits: int = 6) -> str:
    """One of `bases`, changed by a few random edits."""
    text = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.integers(0, 7))
        pos = draw(st.integers(0, len(text)))
        if kind == 7:  # a digit becomes something that is not one
            found = [i for i in range(pos, min(len(text), pos + 400)) if text[i] in _DIGITS]
            if found:
                i = found[0]
                text = text[:i] + draw(st.sampled_from(NUMBERISH)) + text[i + 1 :]
        elif kind == 0:  # insert a token
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif kind == 1:  # replace a span with a token
            end = pos + draw(st.integers(0, 12))
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[end:]
        elif kind == 2:  # delete a span
            text = text[:pos] + text[pos + draw(st.integers(1, 200)) :]
        elif kind == 3:  # cut short
            text = text[:pos]
        elif kind == 4:  # insert free text
            text = text[:pos] + draw(st.text(max_size=8)) + text[pos:]
        else:  # repeat, drop or swap whole lines
            lines = text.split("\n")
            if len(lines) < 2:
                continue
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == 5:
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
                if draw(st.booleans()):
                    del lines[i]
            text = "\n".join(lines)
    return text
