"""Every parser of remote or user input, fed inputs mutated from the real fixtures
(issue 11). None may raise anything but its documented typed error, and whatever it
returns must go through "free", the status document (strict JSON), the table and the
menu's words without raising either.

The default run tries a few hundred inputs per parser; the `slow` run 10,000 each.
Both are derandomized, so CI is reproducible and a failure names its input.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_tray.core.availability import host_units, summarize
from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.host_form import check_form, form_of
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.report import status_document, status_table
from gpu_tray.core.settings import Config
from gpu_tray.presenter.text import gpu_line, mig_line, tooltip
from gpu_tray.sources.prometheus.dcgm import (
    QueryError,
    build_hosts,
    host_snapshot,
    parse_exposition,
    series_from_query,
)
from gpu_tray.sources.slurm.parse import (
    node_snapshots,
    parse_job_detail,
    parse_scontrol_nodes,
    parse_sinfo,
    parse_sinfo_json,
    parse_sinfo_table,
    parse_squeue,
    parse_squeue_json,
    parse_squeue_table,
)
from gpu_tray.sources.slurm.probe import split_sections
from gpu_tray.sources.ssh import health, nvsmi
from gpu_tray.sources.ssh.nvsmi import GPU_FIELDS, MARK, parse_poll_output, poll_input
from tests.captures import CAPTURES, NVSMI, error_output, poll_output
from tests.fuzz.mutate import mutated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLUSTER = FIXTURES / "cluster"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()

DEFAULT = 300
SLOW = 10_000
# Generating TOML documents costs ~8 ms each: these add to the 10,000 mutated texts.
SLOW_SHAPES = 3_000


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def present(snaps: list[HostSnapshot], config: Config | None = None) -> None:
    """Everything a user sees of `snaps`: none of it may raise."""
    config = config or Config()
    summary = summarize(snaps, config.thresholds_for)
    json.dumps(status_document(snaps, config), allow_nan=False)
    status_table(snaps, config)
    tooltip(snaps, summary, config.thresholds_for, now=NOW)
    for snap in snaps:
        units = host_units(snap, config.thresholds_for(snap.name))
        for gpu in snap.gpus:
            mine = [u for u in units if u.gpu_index == gpu.index]
            gpu_line(gpu, sum(u.free for u in mine), len(mine))
            for mig in gpu.mig_devices:
                mig_line(gpu, mig.index)


# -- nvidia-smi: the poll script's output --------------------------------------------------


def _nvsmi_bases() -> list[str]:
    bases = [
        poll_output(name, owners={11345: "a.very-long-username"}).decode() for name in CAPTURES
    ]
    q_load = (NVSMI / "q-text_H100-80GB-HBM3-MIG_linux_drv590.48.01_idle.txt").read_text()
    bases.append(
        poll_output(
            "h100-mig-idle",
            q_text=q_load,
            apps_lines=["GPU-00000000-0000-0000-0000-000000000000, 21180, 4000, /opt/x,y"],
            owners={21180: "1001"},
        ).decode()
    )
    bases.append(error_output("No supported GPUs were found", 255).decode())
    bases.append(
        "\n".join(
            [
                f"{MARK}gpus rc=0 fields={GPU_FIELDS}",
                "0, GPU-0, NVIDIA GB10, [N/A], [N/A], 0, 41, 4.56, 0000000F:01:00.0, [N/A]",
                "1, GPU-1, A100, 81920, 0, 0, [GPU requires reset], [Unknown Error], "
                "03f8cfdd:00:00.0, Disabled",
                f"{MARK}apps rc=0",
                "GPU-0, 23, [N/A], [Not Found]",
                "GPU-1, [Insufficient Permissions], [Insufficient Permissions], chrome --a=b,c",
                f"{MARK}owners",
                "     23 1001",
                f"{MARK}end",
            ]
        )
    )
    return bases


NVSMI_BASES = _nvsmi_bases()


def check_nvsmi(text: str, code: int) -> None:
    stdout = text.encode("utf-8", errors="surrogatepass")
    sections = nvsmi._split_sections(stdout.decode("utf-8", errors="replace"))
    # The inner parsers, whose exceptions parse_poll_output would hide as bad_output:
    # health may raise nothing, the GPU part only its typed error.
    health.parse_health(sections.body)
    with contextlib.suppress(nvsmi.BadOutput):
        nvsmi._parse(sections, b"", code)
    result = parse_poll_output(stdout, b"", code)
    if result.state is HostState.OK:
        assert result.message is None
        for gpu in result.gpus:
            assert isinstance(gpu.index, int) and gpu.index >= 0
            assert all(p.pid is None or p.pid >= 0 for p in gpu.processes)
    else:
        assert result.message and "\n" not in result.message
    present([HostSnapshot("node", result.state, result.message, gpus=result.gpus)])


@fuzz_settings(DEFAULT)
@given(mutated(NVSMI_BASES), st.sampled_from([0, 0, 0, 1, 127]))
def test_nvsmi_poll_output(text: str, code: int) -> None:
    check_nvsmi(text, code)


@pytest.mark.slow
@fuzz_settings(SLOW)
@given(mutated(NVSMI_BASES, max_edits=10), st.sampled_from([0, 0, 0, 1, 127]))
def test_nvsmi_poll_output_slow(text: str, code: int) -> None:
    check_nvsmi(text, code)


# -- DCGM exposition text and Prometheus JSON ----------------------------------------------

DCGM_BASES = [p.read_text() for p in sorted(CLUSTER.glob("dcgm_metrics_*"))]
PROM_BASES = [
    p.read_text()
    for p in sorted(
        [*CLUSTER.glob("prom_api_v1_query_*.json"), *CLUSTER.glob("generated_local/*prom*.json")]
    )
]


def check_dcgm(text: str, now: float) -> None:
    report = parse_exposition(text)
    builds = build_hosts(report.series, now, 90.0)
    present([host_snapshot(builds[name], NOW, 12.0, now) for name in sorted(builds)])


def check_prometheus(body: str) -> None:
    try:
        result = series_from_query(body)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    now = result.evaluated_at if result.evaluated_at is not None else NOW_S
    if not math.isfinite(now):
        now = NOW_S
    builds = build_hosts(result.series, now, 90.0)
    present([host_snapshot(builds[name], NOW, 12.0, now) for name in sorted(builds)])


@fuzz_settings(DEFAULT)
@given(mutated(DCGM_BASES), st.sampled_from([NOW_S, 1.7e9]))
def test_dcgm_exposition(text: str, now: float) -> None:
    check_dcgm(text, now)


@pytest.mark.slow
@fuzz_settings(SLOW)
@given(mutated(DCGM_BASES, max_edits=10), st.sampled_from([NOW_S, 1.7e9]))
def test_dcgm_exposition_slow(text: str, now: float) -> None:
    check_dcgm(text, now)


@fuzz_settings(DEFAULT)
@given(mutated(PROM_BASES))
def test_prometheus_json(body: str) -> None:
    check_prometheus(body)


@pytest.mark.slow
@fuzz_settings(SLOW)
@given(mutated(PROM_BASES, max_edits=10))
def test_prometheus_json_slow(body: str) -> None:
    check_prometheus(body)


# -- Slurm: sinfo, squeue, scontrol --------------------------------------------------------

SLURM_BASES = [
    p.read_text()
    for p in sorted([*CLUSTER.glob("*slurm*"), *CLUSTER.glob("generated_local/*slurm*")])
]


def check_slurm(text: str) -> None:
    nodes = parse_sinfo(text)
    nodes.update(parse_sinfo_table(text))
    nodes.update(parse_scontrol_nodes(text))
    nodes.update(parse_sinfo_json(text))
    jobs = parse_squeue(text) + parse_squeue_table(text)
    more, detail = parse_squeue_json(text)
    detail.update(parse_job_detail(text))
    split_sections(text)
    present(node_snapshots(nodes, [*jobs, *more], detail, NOW))


@fuzz_settings(DEFAULT)
@given(mutated(SLURM_BASES))
def test_slurm_outputs(text: str) -> None:
    check_slurm(text)


@pytest.mark.slow
@fuzz_settings(SLOW)
@given(mutated(SLURM_BASES, max_edits=10))
def test_slurm_outputs_slow(text: str) -> None:
    check_slurm(text)


# -- config.toml ---------------------------------------------------------------------------

CONFIG_BASES = [
    """\
poll_interval_s = 5

[free]
max_memory_mib = 1024
max_utilization_pct = 5

[[hosts]]
name = "gpu-node1"      # an alias from ~/.ssh/config

[[hosts]]
name = "node2"
hostname = "10.0.0.2"
port = 2222
user = "alice"
identity_file = "~/.ssh/id_ed25519"
proxy_jump = "bastion,gateway"
auth = "key"
free = { max_memory_mib = 100 }
nvidia_smi = "/usr/local/nvidia/bin/nvidia-smi"

[[sources]]
kind = "prometheus"
url = "http://prometheus.example:9090"
auth = "basic"
username = "reader"
timeout_s = 5
host_label = "Hostname"

[[sources]]
kind = "slurm"
login = "login-node"
partitions = ["gpu"]

[notify]
confirm_polls = 3
sound = true

[[watch]]
host = "gpu-node1"
gpu = 2
count = 1
model = "A100"
min_free_memory_mib = 40000

[[watch]]
count = 2
""",
    '[[hosts]]\nname = "spark"\nnvidia_smi = "/opt/nvidia tools/nvidia-smi"\n',
    "poll_interval_s = 10\n",
]

KEYS = (
    "poll_interval_s",
    "free",
    "hosts",
    "sources",
    "notify",
    "watch",
    "name",
    "hostname",
    "port",
    "user",
    "identity_file",
    "proxy_jump",
    "auth",
    "nvidia_smi",
    "max_memory_mib",
    "max_utilization_pct",
    "kind",
    "url",
    "login",
    "partitions",
    "timeout_s",
    "stale_after_s",
    "host_label",
    "username",
    "ca_file",
    "confirm_polls",
    "sound",
    "gpu",
    "count",
    "model",
    "min_free_memory_mib",
)
SCALARS = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
    | st.sampled_from(["prometheus", "slurm", "key", "/usr/bin/nvidia-smi", "http://x:9"])
)
TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=6)


def check_config(text: str) -> None:
    try:
        config = parse_config(text, Path("/cfg/config.toml"))
    except ConfigError as exc:
        assert str(exc).startswith("/cfg/config.toml")
        return
    for host in config.hosts:
        config.thresholds_for(host.name)
        poll_input(host)
        assert check_form(form_of(host))[1] == {}
    present([], config)


def toml_text(doc: dict) -> str | None:
    try:
        return tomlkit.dumps(doc)
    except Exception:  # a value tomlkit cannot write: not a config anyone has
        return None


@fuzz_settings(DEFAULT)
@given(mutated(CONFIG_BASES))
def test_config_text(text: str) -> None:
    check_config(text)


@fuzz_settings(DEFAULT)
@given(DOCUMENTS)
def test_config_shapes(doc: dict) -> None:
    if (text := toml_text(doc)) is not None:
        check_config(text)


@pytest.mark.slow
@fuzz_settings(SLOW)
@given(mutated(CONFIG_BASES, max_edits=10))
def test_config_text_slow(text: str) -> None:
    check_config(text)


@pytest.mark.slow
@fuzz_settings(SLOW_SHAPES)
@given(DOCUMENTS)
def test_config_shapes_slow(doc: dict) -> None:
    if (text := toml_text(doc)) is not None:
        check_config(text)
