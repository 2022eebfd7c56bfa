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

from gpu_tray.core.digits import int_or, is_digits
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

#: Where nvidia-smi lives when the non-interactive PATH (ssh HOST CMD reads no
#: .bashrc or .profile) does not have it: distribution packages, the NVIDIA container
#: toolkit's mount, WSL2.
FALLBACK_DIRS = ("/usr/bin", "/usr/local/nvidia/bin", "/usr/lib/wsl/lib")
_SEARCH = ":".join(FALLBACK_DIRS)

TAB = "\t"
# Per-host values reach the script on stdin, one `KEY<TAB>VALUE` line each, read by a
# `while read` loop and split with parameter expansion (no fork): never inside the
# command. Unknown keys are ignored, so a newer gpu-tray can send keys an older script
# does not know. Keys:
#   nvidia_smi   the absolute path of nvidia-smi ([[hosts]] nvidia_smi): used instead
#                of searching PATH and FALLBACK_DIRS;
#   disk         a path whose file system is watched besides "/" ([[hosts]] disks):
#                they become the positional parameters (POSIX sh's only array), so
#                each reaches df as one literal word.
_STDIN_LINES = (
    "set --",
    'n=""',
    f'while IFS= read -r l || [ -n "$l" ]; do case $l in *"{TAB}"*) '
    f'k=${{l%%"{TAB}"*}}; v=${{l#*"{TAB}"}}; '
    'case $k in disk) set -- "$@" "$v";; nvidia_smi) n=$v;; esac;; esac; l=""; done',
)

# One line, no single quotes, no double backslashes: it runs under `sh -c '...'`
# whatever the user's login shell is (bash, zsh, fish, tcsh). A value read from
# stdin only ever appears as "$n" or "$s": expanded, never parsed as shell.
# No fork to find nvidia-smi: the tab is a literal one (not `$(printf ...)`), and
# PATH is walked by the shell itself (not `$(command -v ...)`), with globbing off.
_SCRIPT_LINES = (
    "LC_ALL=C",
    "export LC_ALL",
    *_STDIN_LINES,
    # Health first: every later exit (no nvidia-smi, a failing one) still has it.
    *health.script_lines(MARK),
    's=""',
    'if [ -n "$n" ]; then if [ -f "$n" ] && [ -x "$n" ]; then s=$n; fi; '
    f'else q="$PATH:{_SEARCH}"; o=$IFS; IFS=:; set -f; for d in $q; do '
    'if [ -z "$s" ] && [ -n "$d" ] && [ -f "$d/nvidia-smi" ] && [ -x "$d/nvidia-smi" ]; '
    "then s=$d/nvidia-smi; fi; done; set +f; IFS=$o; fi",
    f'[ -n "$s" ] || {{ echo "{MARK}missing"; exit 0; }}',
    f"f={GPU_FIELDS}",
    'g=$("$s" --query-gpu=$f --format=csv,noheader,nounits 2>&1)',
    "r=$?",
    f"if [ $r -eq 2 ]; then f={GPU_FIELDS_LEGACY}; "
    'g=$("$s" --query-gpu=$f --format=csv,noheader,nounits 2>&1); r=$?; fi',
    f'echo "{MARK}gpus rc=$r fields=$f"',
    'printf "%s\\n" "$g"',
    f'[ $r -eq 0 ] || {{ echo "{MARK}end"; exit 0; }}',
    f'a=$("$s" --query-compute-apps={APP_FIELDS} --format=csv,noheader,nounits 2>&1)',
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
    f'case $g in *Enabled*) echo "{MARK}mig-list"; "$s" -L 2>&1; '
    f'echo "{MARK}mig-query"; "$s" -q 2>&1;; esac',
    f'echo "{MARK}end"',
)
POLL_SCRIPT = "; ".join(_SCRIPT_LINES)
#: What is sent to `exec_command`: the constant script under a POSIX shell.
POLL_COMMAND = "sh -c " + shlex.quote(POLL_SCRIPT)

MSG_MISSING = "nvidia-smi was not found on the remote PATH"


def msg_missing_at(path: str) -> str:
    return f"nvidia-smi was not found at {path} (nvidia_smi in config.toml)"


def poll_input(host: HostConfig) -> bytes:
    """What the poll script reads on stdin for `host`: `KEY<TAB>VALUE` lines.

    `nvidia_smi`: the configured path, if any. `disk`: each path of `disks` besides
    "/" (which the script always reads). Values come from validated config (no tab,
    no newline, no control character); one that has such a character anyway is left
    out rather than let it forge a key or split into two lines.
    """
    pairs = [("nvidia_smi", host.nvidia_smi)]
    pairs += [("disk", path) for path in dict.fromkeys(host.disks) if path != "/"]
    lines = [
        f"{key}{TAB}{value}\n"
        for key, value in pairs
        if value is not None and not any(ch < " " or ch == "\x7f" for ch in value)
    ]
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
# [Insufficient Permissions], [Function Not Found],
# [Requested functionality has been deprecated], ...
def _is_placeholder(value: str) -> bool:
    return (value.startswith("[") and value.endswith("]")) or value in ("N/A", "", "Unknown")


# Readings that say the GPU itself is broken, not merely that a value is unknown:
# NVML's "GPU requires reset", "GPU is lost" and "Unknown Error", and their kin.
_FAULT = re.compile(
    r"requires? reset|reset required|is lost|gpu lost|unknown error|off the bus"
    r"|insufficient external power|irq issue",
    re.IGNORECASE,
)


def fault_reading(value: str) -> str | None:
    """The fault a bracketed reading names ("GPU requires reset"), or None."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]") and _FAULT.search(value):
        return value[1:-1].strip()
    return None


_UNIT_SUFFIX = re.compile(r"\s*(MiB|W|%|C|MHz)$")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


def _number(value: str, kind: type, what: str) -> object:
    value = _UNIT_SUFFIX.sub("", value.strip())
    if _is_placeholder(value):
        return NA
    # ASCII only: float() would take "١٢", "1e999" (inf) and "nan".
    if not _DECIMAL.fullmatch(value):
        raise BadOutput(f"{what} is {value[:40]!r}, not a number")
    return int(float(value)) if kind is int else kind(value)


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
    rows = [line for line in sec.body["gpus"] if line.strip() and not _is_warning(line)]
    gpus = [_parse_gpu_row(line, fields, position) for position, line in enumerate(rows)]
    if not gpus:
        raise BadOutput("no GPU rows")

    apps_rc = _int_attr(sec.attrs.get("apps", {}), "rc") if "apps" in sec.attrs else 0
    if apps_rc != 0:
        shown = _tidy("\n".join(sec.body.get("apps", []))) or "(no message)"
        return PollResult(HostState.NVIDIA_SMI_ERROR, msg_error(apps_rc, shown), tuple(gpus))

    owners = _parse_owners(sec.body.get("owners", []))
    apps, readable = _parse_apps(sec.body.get("apps", []), owners)
    gpus = _attach_processes(gpus, apps, readable and "apps" in sec.body)
    if any(g.mig_enabled for g in gpus):
        gpus = _attach_mig(gpus, sec.body.get("mig-list", []), sec.body.get("mig-query", []))
    # A faulty GPU does not fail the host: the others are still usable. It is
    # marked on the GPU (`fault`), never free, and counted as needing attention.
    return PollResult(HostState.OK, None, tuple(gpus))


def _is_warning(line: str) -> bool:
    # nvidia-smi prints e.g. "WARNING: infoROM is corrupted at gpu 0000:01:00.0" on
    # stdout before its rows; it is not a row.
    return line.lstrip().upper().startswith("WARNING:")


def _int_attr(attrs: dict[str, str], key: str) -> int:
    value = int_or(attrs.get(key, "0"))
    if value is None:
        raise BadOutput(f"bad section marker {key}={attrs.get(key)!r}")
    return value


def _parse_gpu_row(line: str, fields: list[str], position: int) -> GpuSample:
    values = [v.strip() for v in line.split(",")]
    if len(values) != len(fields):
        raise BadOutput(
            f"a GPU row has {len(values)} fields, expected {len(fields)}: {line[:80]!r}"
        )
    row = dict(zip(fields, values, strict=True))
    fault = next((f for v in values if (f := fault_reading(v))), None)
    index_text = row.get("index", "")
    if is_digits(index_text):
        index = int(index_text)
    elif _is_placeholder(index_text) and fault:
        # Only a broken GPU hides its index; its place in the list is nvidia-smi's order.
        index = position
    else:  # "-1", "[N/A]" on a healthy GPU: nothing a GPU could be called by
        raise BadOutput(f"a GPU row has no index: {line[:80]!r}")

    def reading(key: str, kind: type) -> object:
        # A faulty GPU's other readings are whatever it printed: keep what parses.
        try:
            return _number(row.get(key, ""), kind, key)
        except BadOutput:
            if fault:
                return NA
            raise

    return GpuSample(
        index=index,
        uuid=_text(row.get("uuid", "")),
        name=_text(row.get("name", "")),
        memory_total_mib=reading("memory.total", int),
        memory_used_mib=reading("memory.used", int),
        utilization_pct=reading("utilization.gpu", int),
        temperature_c=reading("temperature.gpu", int),
        power_w=reading("power.draw", float),
        pci_bus_id=_text(row.get("pci.bus_id", "")),
        mig_enabled=row.get("mig.mode.current", "") == "Enabled",
        fault=fault,
    )


def _text(value: str) -> str:
    """A text reading; a placeholder ("[N/A]", "[Insufficient Permissions]") is ""."""
    return "" if _is_placeholder(value) else value


def _parse_owners(lines: Iterable[str]) -> dict[int, str]:
    """`ps -o pid=,user:64=` lines. A user with no passwd entry (a container's UID)
    comes back as its number, which is kept: it still tells two holders apart."""
    owners: dict[int, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and is_digits(parts[0]):
            owners[int(parts[0])] = parts[1]
    return owners


@dataclass(frozen=True, slots=True)
class _App:
    gpu_uuid: str
    process: GpuProcess


_NO_PROCESSES = re.compile(r"no running (compute )?processes found", re.IGNORECASE)


def _parse_apps(lines: Iterable[str], owners: dict[int, str]) -> tuple[list[_App], bool]:
    """The compute-apps rows, and whether every line was understood.

    A row is `gpu_uuid, pid, used_gpu_memory, process_name`; the name is last and
    may hold commas (Chromium and Electron put their argv there). A PID nvidia-smi
    may not show ("[Insufficient Permissions]") is a process we cannot name: the
    GPU is still in use. A line we cannot read at all means the list is unknown.
    """
    apps = []
    readable = True
    for line in lines:
        if not line.strip() or _is_warning(line):
            continue
        parts = [p.strip() for p in line.split(",", 3)]
        if len(parts) != 4:
            # Old drivers print "No running processes found"; anything else is not a row.
            if not _NO_PROCESSES.fullmatch(line.strip()):
                readable = False
            continue
        uuid, pid_text, mem, name = parts
        if is_digits(pid_text):
            pid: int | None = int(pid_text)
        elif _is_placeholder(pid_text):
            pid = None
        else:
            readable = False
            continue
        try:
            used = _number(mem, int, "used_gpu_memory")
        except BadOutput:
            used = NA
        # WSL2 prints "[Not Found]" for the name of a process it cannot see into.
        process = GpuProcess(pid, _text(name), used, None if pid is None else owners.get(pid))
        apps.append(_App(uuid, process))
    return apps, readable


def _attach_processes(gpus: list[GpuSample], apps: list[_App], readable: bool) -> list[GpuSample]:
    by_uuid: dict[str, list[GpuProcess]] = {}
    for app in apps:
        by_uuid.setdefault(app.gpu_uuid, []).append(app.process)
    if len(gpus) == 1:
        # One GPU: every process is its own, whatever UUID the rows carry (masked,
        # "[N/A]").
        return [
            replace(gpus[0], processes=tuple(a.process for a in apps), processes_known=readable)
        ]
    uuids = [g.uuid for g in gpus]
    placeable = len(set(uuids)) == len(uuids) and "" not in uuids
    if not placeable or any(a.gpu_uuid not in uuids for a in apps):
        # Rows we cannot tie to a GPU (duplicated or hidden UUIDs): any GPU might
        # hold them, so no GPU's list is known.
        readable = readable and not apps
        if not placeable:
            return [replace(g, processes_known=readable) for g in gpus]
    return [
        replace(g, processes=tuple(by_uuid.get(g.uuid, ())), processes_known=readable) for g in gpus
    ]


_LIST_GPU = re.compile(r"^GPU ([0-9]+): .*\(UUID: ([^)]+)\)", re.ASCII)
_LIST_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+([0-9]+): \(UUID: ([^)]+)\)", re.ASCII)


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


_Q_GPU = re.compile(r"^GPU ([0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+\.[0-9A-Fa-f]+)\s*$", re.ASCII)
_KV = re.compile(r"^(\s*)([^:]+?)\s*:\s*(.*)$")


def _parse_q(lines: Iterable[str]) -> dict[tuple[int, int, int, int] | None, _QGpu]:
    """The MIG parts of `nvidia-smi -q`, keyed by PCI address (`pci_key`)."""
    gpus: dict[tuple[int, int, int, int] | None, _QGpu] = {}
    gpu: _QGpu | None = None
    block = ""
    sub = ""
    for raw in lines:
        line = raw.rstrip()
        if (m := _Q_GPU.match(line)) is not None:
            gpu = gpus.setdefault(pci_key(m.group(1)), _QGpu())
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
    return int_or(value, default)


def pci_key(bus_id: str) -> tuple[int, int, int, int] | None:
    """A PCI address as numbers, so that "0000:0B:00.0" (4-digit domain),
    "00000000:0b:00.0" and a Hyper-V domain such as "03f8cfdd:00:00.0" compare
    as the addresses they are, whatever the case and the domain's width."""
    m = _PCI.fullmatch(bus_id.strip())
    if m is None:
        return None
    return (int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4], 16))


_PCI = re.compile(r"([0-9A-Fa-f]{1,8}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2})\.([0-7])", re.ASCII)


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
        key = pci_key(gpu.pci_bus_id)
        q = queried.get(key, _QGpu()) if key is not None else _QGpu()
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
        # A process whose PID we may not see cannot be placed: it might be in any
        # instance, so none of them is known to be empty.
        known = gpu.processes_known if all(p.pid is not None for p in unplaced) else False
        out.append(
            replace(gpu, mig_devices=tuple(migs), processes=tuple(unplaced), processes_known=known)
        )
    return out
