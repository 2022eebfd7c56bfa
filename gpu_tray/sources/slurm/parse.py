"""Slurm output -> HostSnapshots. Qt-free, SSH-free, never raises on bad input.

What Slurm does that matters here:
- GRES strings come as `gpu:4`, `gpu:a100:4(S:0-1)`, `gpu:a100:2,gpu:v100:2,mps:400`;
  GresUsed as `gpu:a100:3(IDX:0-1,3)`, `gpu:A30:0(IDX:N/A)`, or untyped `gpu:1`
  with no index list at all. GPU indices are node-wide, across types.
- Without slurmdbd, CfgTRES/AllocTRES never mention GPUs: GresUsed is the truth.
- Jobs ask for GPUs per node (`tres-per-node`, `gres:gpu:2` in 22.05, `gres/gpu:2`
  later) or per job (`--gpus=N`: `tres-per-job`); which indices a job holds is only
  in `scontrol -d show job` (`Nodes=n1 ... GRES=gpu:fake:2(IDX:0-1)`).
- Node lists are hostlist expressions (`gpu[01-04,07]`).
- A node that is DOWN, DRAIN(ING/ED), FAIL or not responding (`*`) takes no new work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpu_tray.core.digits import is_digits
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState

MAX_HOSTLIST = 100_000

# -- hostlists -----------------------------------------------------------------------------


def expand_hostlist(expr: str) -> list[str]:
    """`gpu[01-03,7],login` -> gpu01 gpu02 gpu03 gpu7 login. Bad input gives what it can."""
    out: list[str] = []
    for part in _split_top(expr.strip(), ","):
        if part:
            out.extend(_expand_one(part))
        if len(out) > MAX_HOSTLIST:
            return out[:MAX_HOSTLIST]
    return out


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets and parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _expand_one(part: str) -> list[str]:
    m = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", part)
    if not m:
        return [part]
    prefix, ranges, rest = m.groups()
    heads: list[str] = []
    for r in ranges.split(","):
        lo, _, hi = r.partition("-")
        if not is_digits(lo) or (hi and not is_digits(hi)):
            return [part]  # not a hostlist we understand: keep it whole
        a, b = int(lo), int(hi) if hi else int(lo)
        if b < a or b - a > MAX_HOSTLIST:
            return [part]
        width = len(lo)
        heads.extend(f"{prefix}{n:0{width}d}" for n in range(a, b + 1))
        if len(heads) > MAX_HOSTLIST:
            break
    tails = _expand_one(rest) if rest else [""]
    return [h + t for h in heads for t in tails][:MAX_HOSTLIST]


# -- GRES ----------------------------------------------------------------------------------

_GRES = re.compile(
    r"(?P<name>[A-Za-z][\w.\-]*)(?::(?P<type>[^:(),]+))?:(?P<count>[0-9]+)[A-Za-z]?"
    r"(?:\((?P<detail>[^)]*)\))?"
)


@dataclass(frozen=True, slots=True)
class GresEntry:
    name: str
    type: str | None
    count: int
    indices: frozenset[int] | None  # from (IDX:...); None when not given or N/A


def parse_gres(text: str) -> list[GresEntry]:
    """`gpu:a100:3(IDX:0-1,3),mps:0` -> entries. Unparseable pieces are skipped."""
    out: list[GresEntry] = []
    if not text or text.strip() in ("(null)", "N/A"):
        return out
    for piece in _split_top(text.strip(), ","):
        m = _GRES.fullmatch(piece.strip())
        if not m:
            # `gpu` alone (count 1) shows up in job requests.
            if piece.strip() in ("gpu", "gres:gpu", "gres/gpu"):
                out.append(GresEntry("gpu", None, 1, None))
            continue
        indices = None
        detail = m.group("detail") or ""
        if detail.startswith("IDX:"):
            indices = parse_index_list(detail[4:])
        out.append(GresEntry(m.group("name"), m.group("type"), int(m.group("count")), indices))
    return out


def parse_index_list(text: str) -> frozenset[int] | None:
    """`0-1,3` -> {0, 1, 3}; `N/A` -> None."""
    found: set[int] = set()
    for r in text.split(","):
        lo, _, hi = r.strip().partition("-")
        if not is_digits(lo) or (hi and not is_digits(hi)):
            return None
        a, b = int(lo), int(hi) if hi else int(lo)
        if b < a or b - a > 4096:
            return None
        found.update(range(a, b + 1))
    return frozenset(found)


def gpu_request(text: str) -> int | None:
    """GPUs asked for in a TRES string: `gres:gpu:2`, `gres/gpu:a100:2`, `gres/gpu=2`,
    `gres:gpu:fake2:1,gres:mps:10`. None when no GPU is asked for."""
    if not text or text.strip() in ("N/A", "(null)"):
        return None
    total = None
    for piece in _split_top(text.strip(), ","):
        piece = piece.strip()
        for prefix in ("gres:", "gres/"):
            if piece.startswith(prefix):
                piece = piece[len(prefix) :]
                break
        name, _, rest = piece.partition(":")
        if "=" in name:  # gres/gpu=2, gres/gpu:a100=2 handled below
            name, _, rest = piece.partition("=")
            rest = rest.replace("=", ":")
        if name != "gpu":
            continue
        count_text = re.split(r"[:=]", rest)[-1] if rest else "1"
        count = int(count_text) if is_digits(count_text) else 1
        total = (total or 0) + count
    return total


# -- sinfo ---------------------------------------------------------------------------------

# StateLong tokens (joined by "+") for nodes that take no new work.
_UNAVAILABLE = {
    "down",
    "drain",
    "drained",
    "draining",
    "fail",
    "failing",
    "inval",
    "invalid",
    "unknown",
    "future",
    "maint",
    "reboot",
    "reboot_issued",
    "reboot_requested",
    "rebooting",
    "powering_down",
    "power_down",
    "not_responding",
    "blocked",
}
_FLAG_CHARS = "*~#!%$@^-"


def unavailable_reason(state: str) -> str | None:
    """Why a node in this StateLong takes no new jobs, or None when it does."""
    s = state.strip().lower()
    if not s:
        return None
    if "*" in s:
        return "not responding"
    for token in s.split("+"):
        token = token.strip(_FLAG_CHARS)
        if token in _UNAVAILABLE:
            return token
    return None


@dataclass(slots=True)
class SlurmNode:
    name: str
    state: str
    partitions: list[str] = field(default_factory=list)
    reason: str = ""
    gpu_types: list[str | None] = field(default_factory=list)  # one per GPU, index order
    used_count: int | None = None
    used_indices: frozenset[int] | None = None

    @property
    def total_gpus(self) -> int:
        return len(self.gpu_types)


@dataclass(slots=True)
class ParseStats:
    lines: int = 0
    bad_lines: int = 0
    first_bad: str | None = None

    def bad(self, line: str) -> None:
        self.bad_lines += 1
        if self.first_bad is None:
            self.first_bad = line[:120]


def parse_sinfo(text: str, stats: ParseStats | None = None) -> dict[str, SlurmNode]:
    """Lines of `sinfo -h -N -O` with NodeList, StateLong, Gres, GresUsed, Partition and
    Reason, each `:0|` (no padding, `|` after). A node in several partitions has
    several lines; they are merged."""
    stats = stats or ParseStats()
    nodes: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        stats.lines += 1
        parts = line.rstrip("\n").split("|", 5)
        if len(parts) < 4 or not parts[0].strip() or " " in parts[0].strip():
            stats.bad(line)
            continue
        name, state, gres, used = (p.strip() for p in parts[:4])
        partition = parts[4].strip().rstrip("*") if len(parts) > 4 else ""
        reason = parts[5].strip() if len(parts) > 5 else ""
        if reason.endswith("|"):
            reason = reason[:-1].rstrip()
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = SlurmNode(name, state)
            _set_gres(node, gres, used)
        if partition and partition not in node.partitions:
            node.partitions.append(partition)
        if reason and reason not in ("none", "(null)") and not node.reason:
            node.reason = reason
    return nodes


def _set_gres(node: SlurmNode, gres: str, used: str) -> None:
    for entry in parse_gres(gres):
        if entry.name == "gpu":
            node.gpu_types.extend([entry.type] * min(entry.count, 1024))
    gpu_used = [e for e in parse_gres(used) if e.name == "gpu"]
    if gpu_used:
        node.used_count = sum(e.count for e in gpu_used)
        idx = [e.indices for e in gpu_used if e.count > 0]
        if all(i is not None for i in idx):
            node.used_indices = frozenset().union(*idx) if idx else frozenset()


_TABLE_COLUMNS = {
    "NODELIST": "name",
    "HOSTNAMES": "name",
    "STATE": "state",
    "GRES": "gres",
    "GRES_USED": "used",
    "PARTITION": "partition",
}


def parse_sinfo_table(text: str, stats: ParseStats | None = None) -> dict[str, SlurmNode]:
    """sinfo's padded table (`sinfo -N -O ...` with a header). Columns that ran
    together (a value as wide as its column) make a row unreadable: such rows
    are counted as bad, never guessed at."""
    stats = stats or ParseStats()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    header = lines[0].split()
    keys = [_TABLE_COLUMNS.get(h) for h in header]
    nodes: dict[str, SlurmNode] = {}
    if "name" not in keys:
        stats.bad(lines[0])
        return nodes
    for line in lines[1:]:
        stats.lines += 1
        values = line.split()
        if len(values) != len(header):
            stats.bad(line)
            continue
        row = {k: v for k, v in zip(keys, values, strict=True) if k}
        name = row["name"]
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = SlurmNode(name, row.get("state", ""))
            _set_gres(node, row.get("gres", ""), row.get("used", ""))
        part = row.get("partition", "").rstrip("*")
        if part and part not in node.partitions:
            node.partitions.append(part)
    return nodes


def parse_sinfo_json(text: str) -> dict[str, SlurmNode]:
    """`sinfo --json` (openapi v0.0.38 and later). Bad input gives no nodes."""
    doc = _json(text)
    items = doc.get("nodes") if isinstance(doc, dict) else None
    nodes: dict[str, SlurmNode] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        state = item.get("state", "")
        flags = item.get("state_flags") or []
        if isinstance(state, list):  # newer Slurm: ["IDLE", "DRAIN"]
            state, flags = (state[0] if state else ""), [*state[1:], *flags]
        words = [str(state).lower()] + [str(f).lower() for f in flags if isinstance(f, str)]
        node = SlurmNode(item["name"], "+".join(w for w in words if w))
        parts = item.get("partitions")
        node.partitions = (
            [p for p in parts if isinstance(p, str)] if isinstance(parts, list) else []
        )
        node.reason = item.get("reason") if isinstance(item.get("reason"), str) else ""
        gres, used = item.get("gres"), item.get("gres_used")
        _set_gres(
            node, gres if isinstance(gres, str) else "", used if isinstance(used, str) else ""
        )
        nodes[node.name] = node
    return nodes


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def parse_scontrol_nodes(text: str) -> dict[str, SlurmNode]:
    """`scontrol [-o] [-d] show node` records (Gres=, GresUsed=, State=, Partitions=).

    Without GresUsed (no -d), the GPU count in AllocTRES is used when present."""
    nodes: dict[str, SlurmNode] = {}
    for record in re.split(r"\n\s*\n|\n(?=\s*NodeName=)", text):
        fields = _key_values(record)
        name = fields.get("NodeName")
        if not name:
            continue
        node = SlurmNode(name, fields.get("State", "").lower())
        node.partitions = [p for p in fields.get("Partitions", "").split(",") if p]
        node.reason = fields.get("Reason", "")
        _set_gres(node, fields.get("Gres", ""), fields.get("GresUsed", ""))
        if node.used_count is None and "AllocTRES" in fields:
            m = re.search(r"gres/gpu(?::[^=,]+)?=([0-9]+)", fields["AllocTRES"])
            if m or "gres/gpu" in fields.get("CfgTRES", ""):
                node.used_count = int(m.group(1)) if m else 0
        nodes[name] = node
    return nodes


_KEY = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=")


def _key_values(record: str) -> dict[str, str]:
    """`Key=value Key2=va lue` -> dict. A value runs until the next ` Key=`."""
    matches = list(_KEY.finditer(record))
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(record)
        out.setdefault(m.group(1), record[m.end() : end].strip())
    return out


# -- squeue and job detail -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlurmJob:
    job_id: str
    user: str
    name: str
    nodes: tuple[str, ...]
    gpus_per_node: int | None
    gpus_per_job: int | None


def parse_squeue(text: str, stats: ParseStats | None = None) -> list[SlurmJob]:
    """Lines of `squeue -h -t RUNNING -O JobID:0|,UserName:0|,NodeList:0|,tres-per-node:0|,
    tres-per-job:0|,Name:0|` (the name last: it may contain `|`)."""
    stats = stats or ParseStats()
    jobs: list[SlurmJob] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stats.lines += 1
        parts = line.split("|", 5)
        if len(parts) < 5 or not parts[0].strip():
            stats.bad(line)
            continue
        job_id, user, nodelist, per_node, per_job = (p.strip() for p in parts[:5])
        name = parts[5] if len(parts) > 5 else ""
        if name.endswith("|"):
            name = name[:-1]
        jobs.append(
            SlurmJob(
                job_id,
                user,
                name.strip(),
                tuple(expand_hostlist(nodelist)),
                gpu_request(per_node),
                gpu_request(per_job),
            )
        )
    return jobs


def parse_end_times(text: str) -> dict[str, datetime | None]:
    """Lines of `TZ=UTC squeue -h -t RUNNING -O JobID:0|,EndTime:0|,TimeLimit:0|`: job id
    -> when it will end at the latest (UTC), or None for a job without a time limit
    (TimeLimit UNLIMITED; EndTime then says nothing) or an end time Slurm does not know."""
    out: dict[str, datetime | None] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 3 or not parts[0]:
            continue
        job, end, limit = parts[:3]
        when = None
        if limit.upper() not in ("UNLIMITED", "INFINITE", "", "N/A", "NONE"):
            try:
                when = datetime.strptime(end, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                when = None
        out[job] = when
    return out


def parse_job_detail(text: str) -> dict[str, dict[str, frozenset[int]]]:
    """`JobId=N` lines, each followed by `Nodes=... GRES=gpu:...(IDX:...)` lines
    (`scontrol -o -d show job`, cut down by grep), or whole `scontrol -d show job`
    records: job id -> node -> GPU indices it holds there."""
    out: dict[str, dict[str, frozenset[int]]] = {}
    job: str | None = None
    for m in re.finditer(r"JobId=(\S+)|Nodes=(\S+)\s.*?GRES=(\S+)", text):
        if m.group(1):
            job = m.group(1)
            continue
        if job is None:
            continue
        indices: set[int] = set()
        for entry in parse_gres(m.group(3)):
            if entry.name == "gpu" and entry.indices:
                indices |= entry.indices
        if not indices:
            continue
        for node in expand_hostlist(m.group(2)):
            held = out.setdefault(job, {})
            held[node] = held.get(node, frozenset()) | frozenset(indices)
    return out


def parse_squeue_table(text: str, stats: ParseStats | None = None) -> list[SlurmJob]:
    """squeue's padded table (`squeue -O JobID,Name,State,tres-per-node,...`), running
    jobs only. Rows whose values do not line up with the header are counted as bad."""
    stats = stats or ParseStats()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.upper() for h in lines[0].split()]
    jobs: list[SlurmJob] = []
    for line in lines[1:]:
        stats.lines += 1
        values = line.split()
        if len(values) != len(header):
            stats.bad(line)
            continue
        row = dict(zip(header, values, strict=True))
        if row.get("STATE", "RUNNING") not in ("RUNNING", "R"):
            continue
        jobs.append(
            SlurmJob(
                row.get("JOBID", ""),
                row.get("USER", ""),
                row.get("NAME", ""),
                tuple(expand_hostlist(row.get("NODELIST", ""))),
                gpu_request(row.get("TRES_PER_NODE", "")),
                gpu_request(row.get("TRES_PER_JOB", "")),
            )
        )
    return jobs


def parse_squeue_json(text: str) -> tuple[list[SlurmJob], dict[str, dict[str, frozenset[int]]]]:
    """`squeue --json`: running jobs, and the GPU indices each holds per node
    (`gres_detail` lists one entry per node of the job, in node-list order)."""
    doc = _json(text)
    items = doc.get("jobs") if isinstance(doc, dict) else None
    jobs: list[SlurmJob] = []
    detail: dict[str, dict[str, frozenset[int]]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        state = item.get("job_state")
        if isinstance(state, list):
            state = state[0] if state else ""
        if state != "RUNNING":
            continue
        job_id = str(item.get("job_id", ""))
        nodes = tuple(expand_hostlist(_str(item.get("nodes"))))
        jobs.append(
            SlurmJob(
                job_id,
                _str(item.get("user_name")),
                _str(item.get("name")),
                nodes,
                gpu_request(_str(item.get("tres_per_node"))),
                gpu_request(_str(item.get("tres_per_job"))),
            )
        )
        per_node = item.get("gres_detail")
        if isinstance(per_node, list):
            for node, gres in zip(nodes, per_node, strict=False):
                idx = [e.indices for e in parse_gres(_str(gres)) if e.name == "gpu" and e.indices]
                if idx:
                    detail.setdefault(job_id, {})[node] = frozenset().union(*idx)
    return jobs, detail


def _expected_free(
    jobs: Iterable[SlurmJob], ends: Mapping[str, datetime | None]
) -> datetime | None:
    """The latest end of the jobs holding a GPU; None unless every one has an end time."""
    times = [ends.get(j.job_id) for j in jobs]
    if not times or any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


# -- snapshots -----------------------------------------------------------------------------


def node_snapshots(
    nodes: Mapping[str, SlurmNode],
    jobs: Iterable[SlurmJob] | None,
    detail: Mapping[str, Mapping[str, frozenset[int]]],
    polled_at: datetime,
    latency_ms: float | None = None,
    partitions: Iterable[str] | None = None,
    ends: Mapping[str, datetime | None] | None = None,
) -> list[HostSnapshot]:
    """One snapshot per node with GPUs. `allocated` comes from GresUsed (the truth
    without slurmdbd), then the job detail, then the job requests; the holders of
    each GPU are the running jobs' users. `jobs` is None when squeue failed: then a
    node without GresUsed has GPUs whose allocation is unknown (never free).
    `ends` (job id -> end time) gives each held GPU its `expected_free_at`: the latest
    end of the jobs holding it, when every one of them has an end time."""
    wanted = set(partitions) if partitions else None
    jobs_known = jobs is not None
    jobs = list(jobs or ())
    by_node: dict[str, list[SlurmJob]] = {}
    for job in jobs:
        for n in job.nodes:
            by_node.setdefault(n, []).append(job)
    snaps: list[HostSnapshot] = []
    for name in sorted(nodes):
        node = nodes[name]
        if node.total_gpus == 0:
            continue
        if wanted is not None and not wanted.intersection(node.partitions):
            continue
        snaps.append(
            _node_snapshot(
                node, by_node.get(name, []), jobs_known, detail, polled_at, latency_ms, ends or {}
            )
        )
    return snaps


def _node_snapshot(
    node: SlurmNode,
    jobs: list[SlurmJob],
    jobs_known: bool,
    detail: Mapping[str, Mapping[str, frozenset[int]]],
    polled_at: datetime,
    latency_ms: float | None,
    ends: Mapping[str, datetime | None],
) -> HostSnapshot:
    total = node.total_gpus
    owners: dict[int, list[SlurmJob]] = {}
    undetailed: list[tuple[SlurmJob, int]] = []
    for job in jobs:
        held = detail.get(job.job_id, {}).get(node.name)
        if held:
            for i in held:
                owners.setdefault(i, []).append(job)
            continue
        count = job.gpus_per_node
        if count is None and job.gpus_per_job is not None and len(job.nodes) == 1:
            count = job.gpus_per_job
        if count:
            undetailed.append((job, count))
    known = True
    if node.used_indices is not None:
        allocated = set(node.used_indices)
    elif owners and node.used_count in (None, len(owners)):
        allocated = set(owners)
    else:
        count = node.used_count
        if count is None:
            # No GresUsed: the running jobs are the whole story, if we have them.
            count = len(owners) + sum(c for _, c in undetailed)
            known = jobs_known
        # Slurm did not say which: the count is right, the positions are a guess.
        allocated = set(owners) | set(range(total))
        allocated = set(sorted(allocated, key=lambda i: (i not in owners, i))[: min(count, total)])
    unowned = sorted(i for i in allocated if i not in owners)
    for job, count in undetailed:
        for _ in range(count):
            if not unowned:
                break
            owners.setdefault(unowned.pop(0), []).append(job)
    why = unavailable_reason(node.state)
    fault = None
    if why:
        fault = f"not available: node {node.state}" + (f" ({node.reason})" if node.reason else "")
    gpus = tuple(
        GpuSample(
            index=i,
            uuid="",
            name=node.gpu_types[i] or "GPU",
            allocated=(i in allocated) if known else None,
            processes=tuple(
                GpuProcess(pid=None, name=f"job {j.job_id} {j.name}".rstrip(), user=j.user or None)
                for j in owners.get(i, ())
            ),
            fault=fault,
            expected_free_at=_expected_free(owners.get(i, ()), ends),
        )
        for i in range(total)
    )
    return HostSnapshot(
        node.name,
        HostState.OK,
        polled_at=polled_at,
        latency_ms=latency_ms,
        gpus=gpus,
        source="slurm",
        data_at=polled_at,
        node_state=node.state,
    )
