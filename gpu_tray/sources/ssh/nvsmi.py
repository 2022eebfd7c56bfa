"""The one command a poll runs on a GPU host, and the parser for what it prints.

The script is a constant: nothing from config or from the remote side is
ever put into it. Per-host values travel on the exec's stdin, as lines
`KEY<TAB>VALUE` (see `poll_input`); the script ignores keys it does not know.
It prints delimited sections so that one exec returns the host's health (load,
memory, disks: see health.py), the GPUs, their compute processes, the owners
of those processes and, on MIG hosts, the per-instance detail.

The parser never raises. Whatever comes back becomes a `PollResult` with a
typed `HostState` and, when something is wrong, a one-line message.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from gpu_tray.core.models import GpuProcess, GpuSample, HostHealth, HostState, MigDevice
from gpu_tray.core.na import NA
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh import health

MARK = "##gpu-tray:"

GPU_FIELDS = (
    "index,uuid,name,memory.total,memory.used,utilization.gpu,"
    "temperature.gpu,power.draw,pci.bus_id,mig.mode.current"
)
# Drivers older than MIG (before 450) reject the whole query when one field is
# unknown (exit 2), so the script retries without the MIG field.
GPU_FIELDS_LEGACY = GPU_FIELDS.rsplit(",", 1)[0]
APP_FIELDS = "gpu_uuid,pid,used_gpu_memory,process_name"

TAB = "\t"
# Reads the per-host values from stdin, `KEY<TAB>VALUE` per line, split with parameter
# expansion (no fork). `disk` paths become the positional parameters (POSIX sh's only
# array), so each reaches df as one literal word. Unknown keys are ignored.
_STDIN_LINES = (
    "set --",
    f'while IFS= read -r l || [ -n "$l" ]; do case $l in *"{TAB}"*) '
    f'k=${{l%%"{TAB}"*}}; v=${{l#*"{TAB}"}}; '
    'case $k in disk) set -- "$@" "$v";; esac;; esac; l=""; done',
)

# One line, no single quotes, no double backslashes: it runs under `sh -c '...'`
# whatever the user's login shell is (bash, zsh, fish, tcsh).
_SCRIPT_LINES = (
    "LC_ALL=C",
    "export LC_ALL",
    *_STDIN_LINES,
    # Health first: every later exit (no nvidia-smi, a failing one) still has it.
    *health.script_lines(MARK),
    f'command -v nvidia-smi >/dev/null 2>&1 || {{ echo "{MARK}missing"; exit 0; }}',
    f"f={GPU_FIELDS}",
    "g=$(nvidia-smi --query-gpu=$f --format=csv,noheader,nounits 2>&1)",
    "r=$?",
    f"if [ $r -eq 2 ]; then f={GPU_FIELDS_LEGACY}; "
    "g=$(nvidia-smi --query-gpu=$f --format=csv,noheader,nounits 2>&1); r=$?; fi",
    f'echo "{MARK}gpus rc=$r fields=$f"',
    'printf "%s\\n" "$g"',
    f'[ $r -eq 0 ] || {{ echo "{MARK}end"; exit 0; }}',
    f"a=$(nvidia-smi --query-compute-apps={APP_FIELDS} --format=csv,noheader,nounits 2>&1)",
    "r=$?",
    f'echo "{MARK}apps rc=$r"',
    'printf "%s\\n" "$a"',
    # Only digits reach ps; `user:64` keeps long usernames whole (the usual 8-wide column
    # prints "a.very-l+").
    # Two execs, and none on an idle host: every fork counts on a busy login node.
    'p=""',
    'if [ -n "$a" ]; then p=$(printf "%s\\n" "$a" | cut -s -d, -f2 | tr -cs 0-9 ,); fi',
    "p=${p#,}",
    "p=${p%,}",
    f'echo "{MARK}owners"',
    'if [ -n "$p" ]; then ps -o pid=,user:64= -p "$p" 2>/dev/null; fi',
    f'case $g in *Enabled*) echo "{MARK}mig-list"; nvidia-smi -L 2>&1; '
    f'echo "{MARK}mig-query"; nvidia-smi -q 2>&1;; esac',
    f'echo "{MARK}end"',
)
POLL_SCRIPT = "; ".join(_SCRIPT_LINES)
#: What is sent to `exec_command`: the constant script under a POSIX shell.
POLL_COMMAND = "sh -c " + shlex.quote(POLL_SCRIPT)

MSG_MISSING = "nvidia-smi was not found on the remote PATH"


def poll_input(host: HostConfig) -> bytes:
    """What the poll script reads on stdin for `host`: `KEY<TAB>VALUE` lines.

    `disk`: each path of `disks` besides "/" (which the script always reads).
    Config validation refuses control characters; a path holding one anyway is
    left out rather than allowed to split into two lines."""
    lines = []
    for path in dict.fromkeys(host.disks):
        if path != "/" and not any(ord(c) < 32 or ord(c) == 127 for c in path):
            lines.append(f"disk{TAB}{path}\n")
    return "".join(lines).encode("utf-8", errors="surrogateescape")


def msg_error(exit_code: int, text: str) -> str:
    return f"nvidia-smi failed (exit {exit_code}): {text}"


def msg_bad(detail: str) -> str:
    return f"Unreadable nvidia-smi output: {detail}"


@dataclass(frozen=True, slots=True)
class PollResult:
    state: HostState
    message: str | None = None
    gpus: tuple[GpuSample, ...] = ()
    # Read whatever happened to nvidia-smi; None when the script printed no health.
    health: HostHealth | None = None


class BadOutput(Exception):
    """Internal: raised inside the parser, always turned into a bad_output result."""


# Spellings of "unknown" seen across drivers: [N/A], N/A, [Not Supported],
# [Unknown Error], [Function Not Found], [Requested functionality has been deprecated], ...
def _is_placeholder(value: str) -> bool:
    return (value.startswith("[") and value.endswith("]")) or value in ("N/A", "", "Unknown")


_UNIT_SUFFIX = re.compile(r"\s*(MiB|W|%|C|MHz)$")


def _number(value: str, kind: type, what: str) -> object:
    value = _UNIT_SUFFIX.sub("", value.strip())
    if _is_placeholder(value):
        return NA
    try:
        return kind(float(value)) if kind is int else kind(value)
    except ValueError:
        raise BadOutput(f"{what} is {value[:40]!r}, not a number") from None


def _tidy(text: str, limit: int = 300) -> str:
    one_line = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


@dataclass
class _Sections:
    order: list[str] = field(default_factory=list)
    body: dict[str, list[str]] = field(default_factory=dict)
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)


def _split_sections(text: str) -> _Sections:
    out = _Sections()
    current: str | None = None
    for line in text.splitlines():
        if line.startswith(MARK):
            name, *rest = line[len(MARK) :].split(" ")
            attrs = dict(item.split("=", 1) for item in rest if "=" in item)
            current = name
            out.order.append(name)
            out.body[name] = []
            out.attrs[name] = attrs
        elif current is not None:
            out.body[current].append(line)
    return out


def parse_poll_output(stdout: bytes, stderr: bytes = b"", exit_status: int = 0) -> PollResult:
    """Turn what `POLL_COMMAND` printed into a typed result. Never raises."""
    text = stdout.decode("utf-8", errors="replace").replace("\r\n", "\n")
    try:
        sec = _split_sections(text)
    except Exception as exc:  # the contract is "never raises", even on our own bugs
        return PollResult(HostState.BAD_OUTPUT, msg_bad(f"{type(exc).__name__}: {exc}"))
    try:
        found = health.parse_health(sec.body)
    except Exception:  # health is extra: it never turns a good poll bad
        found = None
    try:
        result = _parse(sec, stderr, exit_status)
    except BadOutput as exc:
        result = PollResult(HostState.BAD_OUTPUT, msg_bad(str(exc)))
    except Exception as exc:
        result = PollResult(HostState.BAD_OUTPUT, msg_bad(f"{type(exc).__name__}: {exc}"))
    return replace(result, health=found)


def _parse(sec: _Sections, stderr: bytes, exit_status: int) -> PollResult:
    if "missing" in sec.body:
        return PollResult(HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
    if "gpus" not in sec.body:
        err = _tidy(stderr.decode("utf-8", errors="replace"))
        if exit_status == 127 or "not found" in err:
            return PollResult(HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
        detail = f"the poll script printed no GPU section (exit {exit_status})"
        return PollResult(HostState.BAD_OUTPUT, msg_bad(detail + (f": {err}" if err else "")))

    rc = _int_attr(sec.attrs["gpus"], "rc")
    gpu_text = "\n".join(sec.body["gpus"])
    if rc != 0:
        shown = _tidy(gpu_text) or "(no message)"
        return PollResult(HostState.NVIDIA_SMI_ERROR, msg_error(rc, shown))
    if "end" not in sec.body:
        raise BadOutput("the output was cut short")

    fields = sec.attrs["gpus"].get("fields", GPU_FIELDS).split(",")
    gpus = [_parse_gpu_row(line, fields) for line in sec.body["gpus"] if line.strip()]
    if not gpus:
        raise BadOutput("no GPU rows")

    apps_rc = _int_attr(sec.attrs.get("apps", {}), "rc") if "apps" in sec.attrs else 0
    if apps_rc != 0:
        shown = _tidy("\n".join(sec.body.get("apps", []))) or "(no message)"
        return PollResult(HostState.NVIDIA_SMI_ERROR, msg_error(apps_rc, shown), tuple(gpus))

    owners = _parse_owners(sec.body.get("owners", []))
    apps = _parse_apps(sec.body.get("apps", []), owners)
    gpus = _attach_processes(gpus, apps)
    if any(g.mig_enabled for g in gpus):
        gpus = _attach_mig(gpus, sec.body.get("mig-list", []), sec.body.get("mig-query", []))

    lost = [g for g in gpus if g.fault]
    if lost:
        g = lost[0]
        where = f" ({g.pci_bus_id})" if g.pci_bus_id else ""
        return PollResult(
            HostState.NVIDIA_SMI_ERROR,
            f"nvidia-smi reports GPU {g.index}{where} as lost",
            tuple(gpus),
        )
    return PollResult(HostState.OK, None, tuple(gpus))


def _int_attr(attrs: dict[str, str], key: str) -> int:
    try:
        return int(attrs.get(key, "0"))
    except ValueError:
        raise BadOutput(f"bad section marker {key}={attrs.get(key)!r}") from None


def _parse_gpu_row(line: str, fields: list[str]) -> GpuSample:
    values = [v.strip() for v in line.split(",")]
    if len(values) != len(fields):
        raise BadOutput(
            f"a GPU row has {len(values)} fields, expected {len(fields)}: {line[:80]!r}"
        )
    row = dict(zip(fields, values, strict=True))
    fault = "GPU is lost" if any("GPU is lost" in v for v in values) else None
    index = _number(row["index"], int, "GPU index")
    if index is NA:
        raise BadOutput(f"a GPU row has no index: {line[:80]!r}")
    if fault:
        return GpuSample(
            index=int(index),
            uuid=row.get("uuid", ""),
            name=row.get("name", ""),
            fault=fault,
            pci_bus_id=row.get("pci.bus_id", ""),
        )
    return GpuSample(
        index=int(index),
        uuid=row["uuid"],
        name=row["name"],
        memory_total_mib=_number(row["memory.total"], int, "memory.total"),
        memory_used_mib=_number(row["memory.used"], int, "memory.used"),
        utilization_pct=_number(row["utilization.gpu"], int, "utilization.gpu"),
        temperature_c=_number(row["temperature.gpu"], int, "temperature.gpu"),
        power_w=_number(row["power.draw"], float, "power.draw"),
        pci_bus_id=row.get("pci.bus_id", ""),
        mig_enabled=row.get("mig.mode.current", "") == "Enabled",
    )


def _parse_owners(lines: Iterable[str]) -> dict[int, str]:
    owners: dict[int, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            owners[int(parts[0])] = parts[1]
    return owners


@dataclass(frozen=True, slots=True)
class _App:
    gpu_uuid: str
    process: GpuProcess


def _parse_apps(lines: Iterable[str], owners: dict[int, str]) -> list[_App]:
    apps = []
    for line in lines:
        parts = [p.strip() for p in line.split(",", 3)]
        # Old drivers print "No running processes found" and similar prose: skip it.
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        uuid, pid_text, mem, name = parts
        pid = int(pid_text)
        used = _number(mem, int, "used_gpu_memory")
        apps.append(_App(uuid, GpuProcess(pid, name, used, owners.get(pid))))
    return apps


def _attach_processes(gpus: list[GpuSample], apps: list[_App]) -> list[GpuSample]:
    by_uuid: dict[str, list[GpuProcess]] = {}
    for app in apps:
        by_uuid.setdefault(app.gpu_uuid, []).append(app.process)
    if len({g.uuid for g in gpus}) != len(gpus):
        # Masked or duplicated UUIDs cannot be told apart: a single GPU still can.
        if len(gpus) == 1:
            return [replace(gpus[0], processes=tuple(p for a in apps for p in [a.process]))]
        return gpus
    return [replace(g, processes=tuple(by_uuid.get(g.uuid, ()))) for g in gpus]


_LIST_GPU = re.compile(r"^GPU (\d+): .*\(UUID: ([^)]+)\)")
_LIST_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)]+)\)")


def _parse_mig_list(lines: Iterable[str]) -> dict[int, list[tuple[int, str, str]]]:
    """`nvidia-smi -L` -> {gpu index: [(mig index, profile, uuid)]}."""
    out: dict[int, list[tuple[int, str, str]]] = {}
    current: int | None = None
    for line in lines:
        if m := _LIST_GPU.match(line):
            current = int(m.group(1))
            out.setdefault(current, [])
        elif (m := _LIST_MIG.match(line)) and current is not None:
            out[current].append((int(m.group(2)), m.group(1), m.group(3)))
    return out


@dataclass
class _QMig:
    index: int
    gi: int | None = None
    ci: int | None = None
    total: object = NA
    used: object = NA


@dataclass
class _QProc:
    gi: int | None = None
    ci: int | None = None
    pid: int | None = None
    name: str = ""
    used: object = NA


@dataclass
class _QGpu:
    migs: list[_QMig] = field(default_factory=list)
    procs: list[_QProc] = field(default_factory=list)


_Q_GPU = re.compile(r"^GPU ([0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+\.[0-9A-Fa-f]+)\s*$")
_KV = re.compile(r"^(\s*)([^:]+?)\s*:\s*(.*)$")


def _parse_q(lines: Iterable[str]) -> dict[str, _QGpu]:
    """The MIG parts of `nvidia-smi -q`, keyed by PCI bus id."""
    gpus: dict[str, _QGpu] = {}
    gpu: _QGpu | None = None
    block = ""
    sub = ""
    for raw in lines:
        line = raw.rstrip()
        if (m := _Q_GPU.match(line)) is not None:
            gpu = gpus.setdefault(m.group(1).upper(), _QGpu())
            block = sub = ""
            continue
        if gpu is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 4:
            block, sub = stripped.split(":")[0].strip(), ""
            if block == "MIG Device":
                gpu.migs.append(_QMig(index=len(gpu.migs)))
            continue
        m = _KV.match(line)
        if block == "MIG Device" and gpu.migs:
            mig = gpu.migs[-1]
            if m is None or not m.group(3):
                sub = stripped
                continue
            key, value = m.group(2), m.group(3)
            if indent == 8 and key == "Index":
                mig.index = _int_or(value, mig.index)
            elif indent == 8 and key == "GPU Instance ID":
                mig.gi = _int_or(value, None)
            elif indent == 8 and key == "Compute Instance ID":
                mig.ci = _int_or(value, None)
            elif "FB Memory Usage" in sub and key in ("Total", "Used"):
                number = _number(value, int, f"MIG {key}")
                if key == "Total":
                    mig.total = number
                else:
                    mig.used = number
        elif block == "Processes" and m is not None:
            key, value = m.group(2), m.group(3)
            if key == "GPU instance ID":
                gpu.procs.append(_QProc(gi=_int_or(value, None)))
            elif not gpu.procs:
                continue
            elif key == "Compute instance ID":
                gpu.procs[-1].ci = _int_or(value, None)
            elif key == "Process ID":
                gpu.procs[-1].pid = _int_or(value, None)
            elif key == "Name":
                gpu.procs[-1].name = value
            elif key == "Used GPU Memory":
                gpu.procs[-1].used = _number(value, int, "process memory")
    return gpus


def _int_or(value: str, default: int | None) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return default


def _attach_mig(
    gpus: list[GpuSample], list_lines: list[str], q_lines: list[str]
) -> list[GpuSample]:
    listed = _parse_mig_list(list_lines)
    queried = _parse_q(q_lines)
    out = []
    for gpu in gpus:
        if not gpu.mig_enabled:
            out.append(gpu)
            continue
        q = queried.get(gpu.pci_bus_id.upper(), _QGpu())
        by_index = {m.index: m for m in q.migs}
        # Processes of a MIG GPU carry the parent's UUID; -q tells which instance runs them.
        where = {p.pid: (p.gi, p.ci) for p in q.procs if p.pid is not None}
        placed: dict[tuple[int | None, int | None], list[GpuProcess]] = {}
        unplaced: list[GpuProcess] = []
        for proc in gpu.processes:
            if proc.pid in where:
                gi, ci = where[proc.pid]
                placed.setdefault((gi, ci), []).append(
                    replace(proc, gpu_instance_id=gi, compute_instance_id=ci)
                )
            else:
                unplaced.append(proc)
        migs = []
        for mig_index, profile, uuid in listed.get(gpu.index, []):
            qm = by_index.get(mig_index, _QMig(mig_index))
            migs.append(
                MigDevice(
                    index=mig_index,
                    uuid=uuid,
                    profile=profile,
                    gpu_instance_id=qm.gi,
                    compute_instance_id=qm.ci,
                    memory_total_mib=qm.total,
                    memory_used_mib=qm.used,
                    processes=tuple(placed.get((qm.gi, qm.ci), ())),
                )
            )
        out.append(replace(gpu, mig_devices=tuple(migs), processes=tuple(unplaced)))
    return out
