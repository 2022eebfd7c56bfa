"""DCGM exporter series -> HostSnapshots. Qt-free, network-free, never raises on bad input.

Series come either from a Prometheus instant query (JSON, see `series_from_query`)
or straight from an exporter's `/metrics` text (`parse_exposition`). Both become
`Series` records, and `build_hosts` groups them by host and GPU.

What the exporter does that matters here:
- every series carries the GPU's `gpu` index, `UUID`, `modelName` and `Hostname`;
- MIG instances are rows with `GPU_I_ID`/`GPU_I_PROFILE` that share the parent's
  UUID and have no `DCGM_FI_DEV_GPU_UTIL`; their power and temperature are the
  parent GPU's, repeated per row, so they must not be added up;
- Kubernetes workload labels are `pod`, `namespace`, `container`. Under
  kube-prometheus they collide with the scrape target's own labels and become
  `exported_pod`, ...; the plain ones then name the exporter pod itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpu_tray.core.digits import int_or
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState, MigDevice
from gpu_tray.core.na import NA, NotAvailable

MaybeNumber = float | NotAvailable

UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
FB_RESERVED = "DCGM_FI_DEV_FB_RESERVED"
TEMP = "DCGM_FI_DEV_GPU_TEMP"
POWER = "DCGM_FI_DEV_POWER_USAGE"
METRICS = (UTIL, FB_USED, FB_FREE, FB_RESERVED, TEMP, POWER)

#: Marks the sample-time series that `instant_query` adds next to the values.
SAMPLE_TIME_LABEL = "gpu_tray_sample_time"
DEFAULT_HOST_LABEL = "Hostname"
# When the host label is missing, these are tried in order (relabelled clusters).
HOST_FALLBACKS = ("exported_Hostname", "kubernetes_node", "node", "instance")


# Every label build_hosts reads. The query keeps only these (`max by`), which
# halves the answer on kube-prometheus, where each series carries a dozen more.
QUERY_LABELS = (
    "Hostname",
    "gpu",
    "UUID",
    "modelName",
    "pci_bus_id",
    "GPU_I_ID",
    "GPU_I_PROFILE",
    "pod",
    "namespace",
    "container",
    *(f"exported_{k}" for k in ("Hostname", "gpu", "UUID", "modelName", "GPU_I_ID")),
    *(f"exported_{k}" for k in ("GPU_I_PROFILE", "pod", "namespace", "container")),
    "kubernetes_node",
    "node",
    "instance",
)
QUERY_METRICS = (UTIL, FB_USED, FB_FREE, TEMP, POWER)


def instant_query(host_label: str = DEFAULT_HOST_LABEL, stale_after_s: float = 90.0) -> str:
    """The one PromQL query per poll: every value we need, plus the sample time of
    each GPU whose FB_USED has not been updated for `stale_after_s`.

    An instant query reports its evaluation time and looks back 5 minutes, so a
    series that stopped updating (no staleness marker: a federated or restarted
    Prometheus, an exporter stamping its own times) would look fresh. `timestamp()`
    of a plain selector is the sample's own time; only the stale ones are asked
    for, so a healthy cluster adds nothing to the answer. (`timestamp()` drops the
    metric name; SAMPLE_TIME_LABEL tells those series apart for `or`.)"""
    labels = ", ".join(dict.fromkeys((host_label, *QUERY_LABELS)))
    metrics = "|".join(QUERY_METRICS)
    values = f'max by (__name__, {labels}) ({{__name__=~"{metrics}"}})'
    stamp = (
        f'label_replace(timestamp({FB_USED}), "{SAMPLE_TIME_LABEL}", "{FB_USED}", "", "")'
        f" < time() - {float(stale_after_s):g}"
    )
    return f"{values} or ({stamp})"


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # "" for the sample-time series, which have no metric name
    labels: Mapping[str, str]
    value: float
    timestamp: float | None = None  # seconds since the epoch, when known


@dataclass(slots=True)
class ParseReport:
    series: list[Series] = field(default_factory=list)
    bad_lines: int = 0
    first_bad: str | None = None

    def bad(self, line: str) -> None:
        self.bad_lines += 1
        if self.first_bad is None:
            self.first_bad = line[:120]


# -- the text exposition format ------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def parse_exposition(text: str) -> ParseReport:
    """Parse Prometheus text format. Lines that are not samples are counted, not fatal:
    captures pasted into docs carry titles and separators."""
    report = ParseReport()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sample = _parse_sample(line)
        if sample is None:
            report.bad(line)
        else:
            report.series.append(sample)
    return report


def _parse_sample(line: str) -> Series | None:
    m = _NAME.match(line)
    if not m:
        return None
    name, pos = m.group(0), m.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        parsed = _parse_labels(line, pos + 1)
        if parsed is None:
            return None
        labels, pos = parsed
    rest = line[pos:].split()
    if not rest or len(rest) > 2:
        return None
    value = _float(rest[0])
    if value is None:
        return None
    ts = None
    if len(rest) == 2:
        ms = _float(rest[1])
        if ms is None or not math.isfinite(ms):
            return None
        ts = ms / 1000.0
    return Series(name, labels, value, ts)


def _parse_labels(line: str, pos: int) -> tuple[dict[str, str], int] | None:
    labels: dict[str, str] = {}
    n = len(line)
    while True:
        while pos < n and line[pos] in " ,":
            pos += 1
        if pos < n and line[pos] == "}":
            return labels, pos + 1
        m = _LABEL_NAME.match(line, pos)
        if not m:
            return None
        key, pos = m.group(0), m.end()
        while pos < n and line[pos] == " ":
            pos += 1
        if pos + 1 >= n or line[pos] != "=" or line[pos + 1] != '"':
            return None
        pos += 2
        value: list[str] = []
        while True:
            if pos >= n:
                return None
            ch = line[pos]
            if ch == "\\" and pos + 1 < n:
                value.append(_ESCAPES.get(line[pos + 1], "\\" + line[pos + 1]))
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                value.append(ch)
                pos += 1
        labels[key] = "".join(value)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# -- the Prometheus HTTP API ---------------------------------------------------------------


class QueryError(Exception):
    """The answer was not a usable query result. `str()` is a one-line message."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    series: list[Series]
    # Prometheus' own clock at evaluation: sample ages are measured against it,
    # so a desktop whose clock is off does not call fresh data stale.
    evaluated_at: float | None


def series_from_query(body: bytes | str) -> QueryResult:
    """Decode an /api/v1/query answer (vector or matrix). Raises QueryError only.

    Values carry the evaluation time, not the sample time, so their timestamp is
    dropped; the sample-time series (see `instant_query`) tell the age."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise QueryError("the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise QueryError("the answer is not a Prometheus API response")
    if doc.get("status") != "success":
        error = doc.get("error") or doc.get("errorType") or "no error text"
        raise QueryError(f"query failed: {_one_line(str(error))}")
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise QueryError("the answer has no data.result list")
    out: list[Series] = []
    evaluated_at: float | None = None
    for item in data["result"]:
        if not isinstance(item, dict):
            continue
        metric = item.get("metric")
        if not isinstance(metric, dict):
            continue
        if not all(isinstance(v, str) and isinstance(k, str) for k, v in metric.items()):
            metric = {str(k): v for k, v in metric.items() if isinstance(v, str)}
        point = item.get("value")
        if point is None and isinstance(item.get("values"), list) and item["values"]:
            point = item["values"][-1]  # a range query: its latest point
        if not isinstance(point, list) or len(point) != 2:
            continue
        ts, raw = point
        value = _float(raw) if isinstance(raw, str) else None
        if value is None or isinstance(ts, bool) or not isinstance(ts, int | float):
            continue
        name = metric.pop("__name__", "")
        if evaluated_at is None and math.isfinite(ts):
            evaluated_at = float(ts)
        out.append(Series(name if isinstance(name, str) else "", metric, value))
    return QueryResult(out, evaluated_at)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- grouping into hosts -------------------------------------------------------------------

_WORKLOAD = ("pod", "namespace", "container")
_IDENTITY = ("gpu", "UUID", "modelName", "pci_bus_id", "GPU_I_ID", "GPU_I_PROFILE")


def label(labels: Mapping[str, str], key: str) -> str:
    """An identity label, or its `exported_` twin when a scrape config renamed it."""
    return labels.get(key) or labels.get(f"exported_{key}") or ""


def workload(labels: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(namespace, pod, container) of the pod holding the GPU, if any.

    The `exported_` labels win: their presence means the plain ones are the
    scrape target's. A plain pod that is the exporter itself is not a workload.
    """
    if labels.get("exported_pod"):
        ns, pod, ctr = (labels.get(f"exported_{k}", "") for k in ("namespace", "pod", "container"))
        return ns, pod, ctr
    pod = labels.get("pod", "")
    if not pod or "dcgm-exporter" in pod or "dcgm-exporter" in labels.get("container", ""):
        return None
    return labels.get("namespace", ""), pod, labels.get("container", "")


def host_of(labels: Mapping[str, str], host_label: str = DEFAULT_HOST_LABEL) -> str:
    value = labels.get(host_label)
    if value:
        return value
    for key in HOST_FALLBACKS:
        if value := labels.get(key):
            return value.rsplit(":", 1)[0] if key == "instance" else value
    return ""


@dataclass(slots=True)
class _Unit:
    """Readings of one GPU or one MIG instance, metric name -> values seen."""

    labels: Mapping[str, str]
    values: dict[str, list[float]] = field(default_factory=dict)
    sample_times: list[float] = field(default_factory=list)
    holders: dict[tuple[str, str, str], None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostBuild:
    """One host's GPUs and how old its newest data is."""

    name: str
    gpus: tuple[GpuSample, ...]
    newest_sample: float | None  # epoch seconds
    stale_gpus: int


def build_hosts(
    series: Iterable[Series],
    now: float,
    stale_after_s: float,
    host_label: str = DEFAULT_HOST_LABEL,
) -> dict[str, HostBuild]:
    """Group DCGM series by host and GPU. Unknown readings stay NA; never raises."""
    hosts: dict[str, dict[tuple[str, str], dict[str, _Unit]]] = {}
    for s in series:
        if not s.name.startswith("DCGM_") and SAMPLE_TIME_LABEL not in s.labels:
            continue
        host = host_of(s.labels, host_label)
        gpu_index = label(s.labels, "gpu")
        uuid = label(s.labels, "UUID")
        if not host or not (gpu_index or uuid):
            continue
        gpus = hosts.setdefault(host, {})
        units = gpus.setdefault((gpu_index, uuid), {})
        instance = label(s.labels, "GPU_I_ID")
        unit = units.get(instance)
        if unit is None:
            unit = units[instance] = _Unit(s.labels)
        if SAMPLE_TIME_LABEL in s.labels:
            if math.isfinite(s.value):
                unit.sample_times.append(s.value)
            continue
        if s.timestamp is not None and s.name == FB_USED:
            unit.sample_times.append(s.timestamp)
        if math.isfinite(s.value):
            unit.values.setdefault(s.name, []).append(s.value)
        if w := workload(s.labels):
            unit.holders.setdefault(w, None)
    out: dict[str, HostBuild] = {}
    for host, gpus in hosts.items():
        samples: list[GpuSample] = []
        newest: float | None = None
        stale = 0
        for (gpu_index, uuid), units in gpus.items():
            gpu, latest = _gpu(gpu_index, uuid, units, now, stale_after_s)
            samples.append(gpu)
            stale += gpu.fault is not None
            if latest is not None:
                newest = latest if newest is None else max(newest, latest)
        samples.sort(key=lambda g: (g.index, g.uuid))
        out[host] = HostBuild(host, tuple(samples), newest, stale)
    return out


def _gpu(
    gpu_index: str,
    uuid: str,
    units: dict[str, _Unit],
    now: float,
    stale_after_s: float,
) -> tuple[GpuSample, float | None]:
    times = [t for u in units.values() for t in u.sample_times]
    latest = max(times) if times else None
    stale = {
        k for k, u in units.items() if u.sample_times and now - max(u.sample_times) > stale_after_s
    }
    fault = None
    if stale and len(stale) == len(units):
        fault = f"stale: no new sample for {_age(now - latest)}"  # type: ignore[operator]
    elif stale:
        # Fresh rows beside stale ones: the stale rows are a MIG instance (or a
        # whole-GPU row) that no longer reports, not this GPU's current state.
        units = {k: u for k, u in units.items() if k not in stale}
    whole = units.get("")
    migs = sorted(((k, u) for k, u in units.items() if k), key=lambda kv: _int_or(kv[0], 1 << 30))
    first = (whole or migs[0][1]).labels
    mig_devices: list[MigDevice] = []
    for n, (instance, u) in enumerate(migs):
        used = _last(u, FB_USED)
        free = _last(u, FB_FREE)
        mig_devices.append(
            MigDevice(
                index=n,
                uuid="",  # DCGM does not export MIG device UUIDs
                profile=label(u.labels, "GPU_I_PROFILE") or "?",
                gpu_instance_id=_int_or(instance, None),
                memory_total_mib=_int(used + free + _last(u, FB_RESERVED, 0.0)),
                memory_used_mib=_int(used),
                processes=_holders(u),
            )
        )
    # Power and temperature are the parent's, repeated on every MIG row: take
    # one reading (the highest), never a sum.
    everyone = [whole] if whole else []
    everyone += [u for _, u in migs]
    if whole is not None and (_has(whole, FB_USED) or not mig_devices):
        used = _last(whole, FB_USED)
        total = used + _last(whole, FB_FREE) + _last(whole, FB_RESERVED, 0.0)
    else:
        used = _sum(m.memory_used_mib for m in mig_devices)
        total = _sum(m.memory_total_mib for m in mig_devices)
    processes = _holders(whole) if whole else ()
    gpu = GpuSample(
        index=_int_or(gpu_index, 0),
        uuid=uuid,
        name=label(first, "modelName") or "GPU",
        memory_total_mib=_int(total),
        memory_used_mib=_int(used),
        utilization_pct=_int(_last(whole, UTIL)) if whole else NA,
        temperature_c=_int(_max(everyone, TEMP)),
        power_w=_round(_max(everyone, POWER)),
        pci_bus_id=label(first, "pci_bus_id"),
        mig_enabled=bool(mig_devices),
        mig_devices=tuple(mig_devices),
        processes=processes,
        fault=fault,
    )
    return gpu, latest


def _holders(u: _Unit) -> tuple[GpuProcess, ...]:
    return tuple(
        GpuProcess(pid=None, name=ctr or pod, user=f"{ns}/{pod}" if ns else pod)
        for ns, pod, ctr in u.holders
    )


def _has(u: _Unit, metric: str) -> bool:
    return bool(u.values.get(metric))


def _last(u: _Unit | None, metric: str, default: MaybeNumber = NA) -> MaybeNumber:
    if u is None:
        return default
    values = u.values.get(metric)
    return values[-1] if values else default


def _max(units: list[_Unit], metric: str) -> MaybeNumber:
    values = [v for u in units for v in u.values.get(metric, ())]
    return max(values) if values else NA


def _sum(values: Iterable[MaybeNumber]) -> MaybeNumber:
    total: MaybeNumber = 0
    any_value = False
    for v in values:
        total = total + v
        any_value = True
    return total if any_value else NA


def _int(v: MaybeNumber) -> int | NotAvailable:
    if isinstance(v, NotAvailable) or not math.isfinite(v):
        return NA
    return round(v)


def _round(v: MaybeNumber) -> float | NotAvailable:
    if isinstance(v, NotAvailable) or not math.isfinite(v):
        return NA
    return round(float(v), 3)


def _int_or(text: str, default: int | None) -> int | None:
    return int_or(text, default)  # ASCII digits only: int() takes "٣" and "1_0"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


# -- snapshots -----------------------------------------------------------------------------


def host_snapshot(
    build: HostBuild, polled_at: datetime, latency_ms: float | None, now: float
) -> HostSnapshot:
    """OK when any GPU is fresh; when every GPU is stale, a timeout that keeps the
    old readings marked stale (never free)."""
    data_at = (
        datetime.fromtimestamp(build.newest_sample, UTC)
        if build.newest_sample is not None
        else polled_at
    )
    if build.gpus and build.stale_gpus == len(build.gpus):
        age = _age(now - build.newest_sample) if build.newest_sample is not None else "a while"
        return HostSnapshot(
            build.name,
            HostState.TIMEOUT,
            f"No new DCGM sample from {build.name} for {age}; showing the last one",
            polled_at=polled_at,
            latency_ms=latency_ms,
            gpus=build.gpus,
            source="prometheus",
            stale=True,
            data_at=data_at,
        )
    return HostSnapshot(
        build.name,
        HostState.OK,
        polled_at=polled_at,
        latency_ms=latency_ms,
        gpus=build.gpus,
        source="prometheus",
        data_at=data_at,
    )
