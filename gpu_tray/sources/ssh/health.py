"""Host health (load, CPUs, memory, disks): the poll script's part that reads it, and
the parser for what that part prints.

It runs in the same exec as nvidia-smi, BEFORE it: the script's other parts end early
when nvidia-smi is missing or fails, and a host's RAM and /home matter regardless.
Everything but df is read with shell builtins (`read` from /proc and /sys), so health
costs one fork per disk path and none for load, CPUs and memory. A file that is not
there (no /proc: a BSD, a locked-down container) is skipped, never an error.

The disk paths arrive on stdin (see `nvsmi.poll_input`) and are kept as the positional
parameters, POSIX sh's only array, so each reaches df as one literal argument.

The parser never raises: an unreadable value is None (unknown), and a host with
unknown health is still `ok`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gpu_tray.core.models import DiskUsage, HostHealth

CPU_ONLINE = "/sys/devices/system/cpu/online"


def script_lines(mark: str) -> tuple[str, ...]:
    """The health part of the poll script; `mark` starts a section line."""
    return (
        f'echo "{mark}health"',
        'if [ -r /proc/loadavg ] && read -r h </proc/loadavg; then echo "loadavg $h"; fi',
        # Online CPUs without a fork ("0-63" or "0-3,8-11"); getconf only where /sys is not.
        f'if [ -r {CPU_ONLINE} ] && read -r h <{CPU_ONLINE}; then echo "online $h"; '
        'elif h=$(getconf _NPROCESSORS_ONLN 2>/dev/null); then echo "ncpu $h"; fi',
        # MemAvailable is the third line: stop there rather than read ~50 lines.
        "if [ -r /proc/meminfo ]; then while read -r k v u; do case $k in "
        'MemTotal:) echo "memtotal $v";; MemAvailable:) echo "memavailable $v"; break;; '
        "esac; done </proc/meminfo; fi",
        f'echo "{mark}disks"',
        # `--` and the quotes: a path is one literal argument, whatever it holds.
        'for d in / "$@"; do printf "path=%s\\n" "$d"; '
        'if [ -e "$d" ]; then df -P -k -- "$d" 2>/dev/null; fi; done',
    )


# A `df -P -k` data line: file system (may hold spaces), 1024-blocks, used, available,
# capacity, mount point (may hold spaces).
_DF_ROW = re.compile(r"^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+|-)%?\s+(/.*)$")


def parse_health(body: Mapping[str, Sequence[str]]) -> HostHealth | None:
    """The `health` and `disks` sections -> HostHealth; None when the script printed
    neither (an older script, or output cut before them)."""
    if "health" not in body and "disks" not in body:
        return None
    values: dict[str, str] = {}
    for line in body.get("health", ()):
        key, _, value = line.partition(" ")
        values[key] = value.strip()
    load = [_float(v) for v in values.get("loadavg", "").split()[:3]]
    load += [None] * (3 - len(load))
    cpus = _online_count(values["online"]) if "online" in values else _int(values.get("ncpu"))
    total_kib = _int(values.get("memtotal"))
    avail_kib = _int(values.get("memavailable"))
    used_kib = None
    if total_kib is not None and avail_kib is not None and avail_kib <= total_kib:
        used_kib = total_kib - avail_kib
    return HostHealth(
        load1=load[0],
        load5=load[1],
        load15=load[2],
        cpus=cpus,
        mem_total_mib=None if total_kib is None else total_kib // 1024,
        mem_used_mib=None if used_kib is None else used_kib // 1024,
        disks=_parse_disks(body.get("disks", ())),
    )


def _parse_disks(lines: Sequence[str]) -> tuple[DiskUsage, ...]:
    disks: list[DiskUsage] = []
    path: str | None = None
    found: DiskUsage | None = None
    for line in [*lines, "path="]:  # the sentinel flushes the last path
        if line.startswith("path="):
            if path is not None:
                disks.append(found or DiskUsage(path))
            path, found = line[len("path=") :], None
            if not path:
                path = None
        elif path is not None and found is None and (m := _DF_ROW.match(line)):
            total, used, avail = (int(m.group(i)) for i in (2, 3, 4))
            found = DiskUsage(path, total // 1024, used // 1024, avail // 1024)
    return tuple(disks)


def _online_count(text: str) -> int | None:
    """ "0-3,8-11" -> 8; "0" -> 1; None when it is not a CPU list."""
    count = 0
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        first, last = _int(lo), _int(hi) if sep else _int(lo)
        if first is None or last is None or last < first:
            return None
        count += last - first + 1
    return count or None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None
