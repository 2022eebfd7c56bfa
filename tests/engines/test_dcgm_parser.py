"""The DCGM parser over every real exporter text and Prometheus answer in the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_tray.core.availability import host_units
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.sources.prometheus.dcgm import (
    QueryError,
    Series,
    build_hosts,
    host_snapshot,
    instant_query,
    parse_exposition,
    series_from_query,
    workload,
)

CLUSTER = Path(__file__).resolve().parent.parent / "fixtures" / "cluster"
TEXTS = sorted(p for p in CLUSTER.glob("dcgm_metrics_*"))
ANSWERS = sorted(
    [*CLUSTER.glob("prom_api_v1_query_*.json"), *CLUSTER.glob("generated_local/*prom*.json")]
)
NOW = 2_000_000_000.0
LIMITS = FreeThresholds()


def hosts_of_text(name: str, now: float = NOW):
    report = parse_exposition((CLUSTER / name).read_text())
    return report, build_hosts(report.series, now, 90.0)


def test_every_fixture_is_covered() -> None:
    assert len(TEXTS) == 13 and len(ANSWERS) == 8
    assert {p.name for p in TEXTS} == set(TEXT_EXPECTATIONS)


# file -> (host, [(gpu index, model, used MiB, total MiB, util %, temp C, power W)])
TEXT_EXPECTATIONS = {
    "dcgm_metrics_tesla_t4_eccd_noheaders.txt": (
        "cp-bm14r7",
        [(0, "Tesla T4", 5120, 15358, 91, 74, 68.244)],
    ),
    "dcgm_metrics_l4_kops.txt": (
        "i-030791dc5a37cd257",
        [(0, "NVIDIA L4", 0, 23033, 0, 31, 16.365)],
    ),
    "dcgm_metrics_grid_a100_10c_vgpu_vks.txt": (
        "conformance-test-np1-qcqc8-bpdtl-wv2gs",
        [(0, "GRID A100-10C", 0, 10239, 0, NA, NA)],
    ),
    "dcgm_metrics_h100_20c_vgpu_k8s_pod_labels_vks.txt": (
        "cluster-tkr1341-ubu2204-1xh100-20c-np-lcqbg-49wfm-rhpj8",
        [(0, "NVIDIA H100-20C", 0, 20479, 0, NA, NA)],
    ),
    "dcgm_metrics_rtx4000ada_k8s_pod_labels_lke.txt": (
        "lke529760-766837-0a634ab30000",
        [(0, "NVIDIA RTX 4000 Ada Generation", 1, 20473, 0, 48, 40.979)],
    ),
    "dcgm_metrics_8xh100_eks_sampled_k8s_pod_labels_aicr.txt": (
        "gpu-node-1",
        [
            (i, "NVIDIA H100 80GB HBM3", NA, NA, 0, t, p)
            for i, t, p in [
                (0, 30, 113.611),
                (1, 29, 68.347),
                (2, 26, 65.709),
                (3, 29, 67.316),
                (4, 28, 68.717),
                (5, 26, 65.742),
                (6, 28, 67.328),
                (7, 26, 66.997),
            ]
        ],
    ),
    "dcgm_metrics_2xt4_k8s_pod_labels_fraction_runai.ini": (
        "nvidia-dcgm-exporter-s228n",
        [(0, "Tesla T4", 128, 14959, 0, 55, 28.722), (1, "Tesla T4", 5, 14960, 0, 52, 17.035)],
    ),
    "dcgm_metrics_a100_mig_disabled_empty_runai.ini": (
        "nvidia-dcgm-exporter-drqwq",
        [(0, "NVIDIA A100-SXM4-40GB", 0, 40384, 0, 29, 45.999)],
    ),
    # MIG enabled with no instance: no memory readings, so never free.
    "dcgm_metrics_a100_mig_enabled_empty_runai.ini": (
        "nvidia-dcgm-exporter-wwvv9",
        [(0, "NVIDIA A100-SXM4-40GB", NA, NA, NA, 32, 75.96)],
    ),
    # MIG: memory is the sum over instances, power/temp one reading (the highest), util unknown.
    "dcgm_metrics_a100_mig_1g5gb_active_runai.ini": (
        "nvidia-dcgm-exporter-km55s",
        [(0, "NVIDIA A100-SXM4-40GB", 4384, 4864, NA, 37, 115.294)],
    ),
    "dcgm_metrics_a100_mig_1g5gb_idle_allocated_runai.ini": (
        "nvidia-dcgm-exporter-m48cc",
        [(0, "NVIDIA A100-SXM4-40GB", 6, 4863, NA, 32, 75.69)],
    ),
    "dcgm_metrics_a100_mig_2x1g5gb_2g10gb_active_runai.ini": (
        "nvidia-dcgm-exporter-q28k4",
        [(0, "NVIDIA A100-SXM4-40GB", 4635, 19583, NA, 37, 116.163)],
    ),
    "dcgm_metrics_a100_mig_4instances_active_runai.ini": (
        "nvidia-dcgm-exporter-tl46n",
        [(0, "NVIDIA A100-SXM4-40GB", 4409, 24446, NA, 35, 112.252)],
    ),
}


@pytest.mark.parametrize("name", sorted(TEXT_EXPECTATIONS))
def test_every_dcgm_text(name: str) -> None:
    report, hosts = hosts_of_text(name)
    host, expected = TEXT_EXPECTATIONS[name]
    assert list(hosts) == [host]
    got = [
        (
            g.index,
            g.name,
            g.memory_used_mib,
            g.memory_total_mib,
            g.utilization_pct,
            g.temperature_c,
            g.power_w,
        )
        for g in hosts[host].gpus
    ]
    assert got == expected
    # Title lines and "-----" separators of the pasted captures are skipped, not fatal.
    bad = {"dcgm_metrics_a100_mig_disabled_empty_runai.ini": 3}.get(
        name, 1 if name.endswith(".ini") and "2xt4" not in name else 0
    )
    assert report.bad_lines == bad


def test_mig_instances_are_the_units() -> None:
    _, hosts = hosts_of_text("dcgm_metrics_a100_mig_4instances_active_runai.ini")
    gpu = hosts["nvidia-dcgm-exporter-tl46n"].gpus[0]
    assert gpu.mig_enabled and gpu.uuid == "GPU-473571f2-fb37-ef7e-50fe-9885b74a23cd"
    migs = [
        (m.profile, m.gpu_instance_id, m.memory_used_mib, m.memory_total_mib)
        for m in gpu.mig_devices
    ]
    assert migs == [
        ("2g.10gb", 5, 13, 9856),
        ("1g.5gb", 7, 6, 4863),
        ("1g.5gb", 8, 4384, 4864),
        ("1g.5gb", 9, 6, 4863),
    ]
    snap = host_snapshot(hosts["nvidia-dcgm-exporter-tl46n"], _dt(NOW), 1.0, NOW)
    units = host_units(snap, LIMITS)
    assert [(u.label, u.free) for u in units] == [
        ("GPU 0 MIG 0", True),
        ("GPU 0 MIG 1", True),
        ("GPU 0 MIG 2", False),  # 4384 MiB used
        ("GPU 0 MIG 3", True),
    ]
    # Four rows repeat the parent's power (112.252, 106.463, ...): one reading, not 437.43 W.
    assert gpu.power_w == 112.252


def test_pod_labels_are_the_holders() -> None:
    _, hosts = hosts_of_text("dcgm_metrics_8xh100_eks_sampled_k8s_pod_labels_aicr.txt")
    gpus = hosts["gpu-node-1"].gpus
    assert gpus[0].users == ("dynamo-workload/vllm-agg-0-vllmdecodeworker-s65j5",)
    assert gpus[0].processes[0].name == "main" and gpus[0].processes[0].pid is None
    assert all(not g.processes for g in gpus[1:])
    _, hosts = hosts_of_text("dcgm_metrics_2xt4_k8s_pod_labels_fraction_runai.ini")
    t4 = hosts["nvidia-dcgm-exporter-s228n"].gpus
    assert t4[0].users == ("runai-reservation/runai-reservation-gpu-qa-mig-worker-gpu-1-kvltw",)
    snap = host_snapshot(hosts["nvidia-dcgm-exporter-s228n"], _dt(NOW), 1.0, NOW)
    assert [u.free for u in host_units(snap, LIMITS)] == [False, True]


def test_workload_labels_exported_and_exporter_pods() -> None:
    # kube-prometheus without honorLabels: the workload moves to exported_*.
    assert workload(
        {
            "pod": "nvidia-dcgm-exporter-x",
            "namespace": "gpu-operator",
            "container": "nvidia-dcgm-exporter",
            "exported_pod": "train-0",
            "exported_namespace": "ml",
            "exported_container": "main",
        }
    ) == ("ml", "train-0", "main")
    # The plain labels naming the exporter itself are not a workload.
    assert (
        workload({"pod": "nvidia-dcgm-exporter-wqqqn", "container": "nvidia-dcgm-exporter"}) is None
    )
    assert workload({"pod": "", "namespace": "", "container": ""}) is None
    assert workload({"pod": "cuda-1", "namespace": "default", "container": "cuda"}) == (
        "default",
        "cuda-1",
        "cuda",
    )


def test_exported_identity_labels() -> None:
    series = [
        Series(
            "DCGM_FI_DEV_FB_USED",
            {
                "exported_Hostname": "n1",
                "exported_gpu": "3",
                "exported_UUID": "GPU-x",
                "exported_modelName": "NVIDIA A100",
            },
            100.0,
        ),
        Series(
            "DCGM_FI_DEV_FB_FREE",
            {"exported_Hostname": "n1", "exported_gpu": "3", "exported_UUID": "GPU-x"},
            900.0,
        ),
    ]
    hosts = build_hosts(series, NOW, 90.0)
    gpu = hosts["n1"].gpus[0]
    assert (gpu.index, gpu.uuid, gpu.name, gpu.memory_used_mib, gpu.memory_total_mib) == (
        3,
        "GPU-x",
        "NVIDIA A100",
        100,
        1000,
    )


ANSWER_EXPECTATIONS = {
    # file -> {host: number of GPUs}, and the first GPU's (used, total, util, temp, power)
    "prom_api_v1_query_DCGM_FI_DEV_FB_USED_8xh100_aicr.json": (
        {"gpu-node-1": 8, "gpu-node-2": 8},
        (74166, NA, NA, NA, NA),
    ),
    "prom_api_v1_query_DCGM_FI_DEV_GPU_TEMP_8xh100_aicr.json": (
        {"gpu-node-1": 8, "gpu-node-2": 8},
        (NA, NA, NA, 30, NA),
    ),
    "prom_api_v1_query_DCGM_FI_DEV_GPU_UTIL_8xh100_aicr.json": (
        {"gpu-node-1": 8, "gpu-node-2": 8},
        (NA, NA, 0, NA, NA),
    ),
    "prom_api_v1_query_DCGM_FI_DEV_POWER_USAGE_8xh100_aicr.json": (
        {"gpu-node-1": 8, "gpu-node-2": 8},
        (NA, NA, NA, NA, 113.611),
    ),
    "prom_api_v1_query_dcgm_regex_h100_vks.json": (
        {"cluster-tkr1341-ubu2204-1xh100-20c-np-lcqbg-49wfm-rhpj8": 1},
        (0, 20479, 0, NA, NA),
    ),
    "GENERATED_LOCAL_prom_api_v1_query_DCGM_FI_DEV_FB_USED.json": (
        {"lke529760-766837-0a634ab30000": 1, "nvidia-dcgm-exporter-q28k4": 1},
        (1, NA, NA, NA, NA),
    ),
    "GENERATED_LOCAL_prom_api_v1_query_dcgm_5metrics_regex.json": (
        {"lke529760-766837-0a634ab30000": 1, "nvidia-dcgm-exporter-q28k4": 1},
        (1, 20016, 0, 48, 40.979),
    ),
    "GENERATED_LOCAL_prom_api_v1_query_range_DCGM_FI_DEV_FB_USED_mig.json": (
        {"nvidia-dcgm-exporter-q28k4": 1},
        (4635, NA, NA, NA, NA),
    ),
}


@pytest.mark.parametrize("path", ANSWERS, ids=lambda p: p.name)
def test_every_prometheus_answer(path: Path) -> None:
    result = series_from_query(path.read_bytes())
    assert result.evaluated_at is not None
    hosts = build_hosts(result.series, result.evaluated_at, 90.0)
    counts, first = ANSWER_EXPECTATIONS[path.name]
    assert {h: len(b.gpus) for h, b in hosts.items()} == counts
    g = hosts[sorted(counts)[0]].gpus[0]
    assert (
        g.memory_used_mib,
        g.memory_total_mib,
        g.utilization_pct,
        g.temperature_c,
        g.power_w,
    ) == first


def test_aicr_exporter_pod_is_not_a_holder_but_honoured_workload_is() -> None:
    result = series_from_query(
        (CLUSTER / "prom_api_v1_query_DCGM_FI_DEV_FB_USED_8xh100_aicr.json").read_bytes()
    )
    hosts = build_hosts(result.series, result.evaluated_at, 90.0)
    assert hosts["gpu-node-1"].gpus[0].users == (
        "dynamo-workload/vllm-agg-0-vllmdecodeworker-s65j5",
    )
    assert [g.users for g in hosts["gpu-node-2"].gpus] == [()] * 8


def test_prometheus_answer_agrees_with_the_texts_it_scraped() -> None:
    """generated_local: a real Prometheus scraped these two texts; both paths must agree."""
    result = series_from_query(
        (
            CLUSTER
            / "generated_local"
            / "GENERATED_LOCAL_prom_api_v1_query_dcgm_5metrics_regex.json"
        ).read_bytes()
    )
    via_prom = build_hosts(result.series, result.evaluated_at, 90.0)
    for name in (
        "dcgm_metrics_rtx4000ada_k8s_pod_labels_lke.txt",
        "dcgm_metrics_a100_mig_2x1g5gb_2g10gb_active_runai.ini",
    ):
        _, direct = hosts_of_text(name)
        for host, build in direct.items():
            a, b = via_prom[host].gpus[0], build.gpus[0]
            assert (a.memory_used_mib, a.temperature_c, a.power_w, a.users) == (
                b.memory_used_mib,
                b.temperature_c,
                b.power_w,
                b.users,
            )
            assert [m.memory_used_mib for m in a.mig_devices] == [
                m.memory_used_mib for m in b.mig_devices
            ]


def test_stale_series_are_marked_stale_not_free() -> None:
    text = (CLUSTER / "dcgm_metrics_l4_kops.txt").read_text()
    sampled_at = NOW - 600
    # The same real text with a sample timestamp (ms) on every line, as federation or
    # a remote-write replica exposes it.
    stamped = "\n".join(
        f"{line} {int(sampled_at * 1000)}" if line and not line.startswith("#") else line
        for line in text.splitlines()
    )
    hosts = build_hosts(parse_exposition(stamped).series, NOW, 90.0)
    build = hosts["i-030791dc5a37cd257"]
    assert build.gpus[0].fault == "stale: no new sample for 10 min"
    snap = host_snapshot(build, _dt(NOW), 3.0, NOW)
    assert snap.state.value == "timeout" and snap.stale
    assert (
        snap.message
        == "No new DCGM sample from i-030791dc5a37cd257 for 10 min; showing the last one"
    )
    assert [u.free for u in host_units(snap, LIMITS)] == [False]
    fresh = host_snapshot(
        build_hosts(parse_exposition(stamped).series, sampled_at + 5, 90.0)["i-030791dc5a37cd257"],
        _dt(NOW),
        3.0,
        sampled_at + 5,
    )
    assert fresh.ok and [u.free for u in host_units(fresh, LIMITS)] == [True]


def test_sample_time_series_from_the_query() -> None:
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {
                        "metric": {
                            "__name__": "DCGM_FI_DEV_FB_USED",
                            "Hostname": "n",
                            "gpu": "0",
                            "UUID": "GPU-1",
                        },
                        "value": [NOW, "0"],
                    },
                    {
                        "metric": {
                            "__name__": "DCGM_FI_DEV_FB_FREE",
                            "Hostname": "n",
                            "gpu": "0",
                            "UUID": "GPU-1",
                        },
                        "value": [NOW, "100"],
                    },
                    {
                        "metric": {
                            "gpu_tray_sample_time": "DCGM_FI_DEV_FB_USED",
                            "Hostname": "n",
                            "gpu": "0",
                            "UUID": "GPU-1",
                        },
                        "value": [NOW, str(NOW - 200)],
                    },
                ],
            },
        }
    )
    result = series_from_query(body)
    gpu = build_hosts(result.series, result.evaluated_at, 90.0)["n"].gpus[0]
    assert gpu.fault == "stale: no new sample for 3 min"


def test_query_is_one_instant_query_for_every_metric() -> None:
    q = instant_query("kubernetes_node", 45)
    for metric in ("GPU_UTIL", "FB_USED", "FB_FREE", "GPU_TEMP", "POWER_USAGE"):
        assert f"DCGM_FI_DEV_{metric}" in q
    assert q.startswith("max by (__name__, kubernetes_node, Hostname, gpu, UUID,")
    # Sample times only for series older than stale_after_s; of a plain selector,
    # so that timestamp() is the sample's time and not the evaluation's.
    assert q.endswith(
        ' or (label_replace(timestamp(DCGM_FI_DEV_FB_USED), "gpu_tray_sample_time", '
        '"DCGM_FI_DEV_FB_USED", "", "") < time() - 45)'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>nginx</html>", "the answer is not JSON"),
        (b"[1, 2]", "the answer is not a Prometheus API response"),
        (
            b'{"status":"error","errorType":"bad_data","error":"1:1: parse error: unexpected"}',
            "query failed: 1:1: parse error: unexpected",
        ),
        (b'{"status":"success","data":{}}', "the answer has no data.result list"),
    ],
)
def test_bad_answers_are_query_errors(body: bytes, message: str) -> None:
    with pytest.raises(QueryError) as err:
        series_from_query(body)
    assert str(err.value) == message


def _dt(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


# -- mangled input never raises ------------------------------------------------------------

REAL_TEXT = "\n".join((CLUSTER / n).read_text() for n in sorted(TEXT_EXPECTATIONS))
REAL_JSON = (CLUSTER / "prom_api_v1_query_dcgm_regex_h100_vks.json").read_text()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mangled_exposition_never_raises(data: st.DataObject) -> None:
    lines = REAL_TEXT.splitlines()
    start = data.draw(st.integers(0, len(lines) - 1))
    chunk = "\n".join(lines[start : start + data.draw(st.integers(1, 40))])
    cut = data.draw(st.integers(0, len(chunk)))
    noise = data.draw(st.text(alphabet='{}",=\\ \n#0123456789.eE+-NaInf_aZ', max_size=30))
    mangled = chunk[:cut] + noise + chunk[cut + data.draw(st.integers(0, 10)) :]
    report = parse_exposition(mangled)
    hosts = build_hosts(report.series, NOW, 90.0)
    for build in hosts.values():
        host_snapshot(build, _dt(NOW), None, NOW)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mangled_query_answers_never_raise_anything_but_query_error(data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(REAL_JSON)))
    noise = data.draw(st.text(max_size=20))
    body = REAL_JSON[:cut] + noise + REAL_JSON[cut + data.draw(st.integers(0, 40)) :]
    try:
        result = series_from_query(body)
    except QueryError:
        return
    build_hosts(result.series, result.evaluated_at or NOW, 90.0)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_json_shape_never_raises(doc: object) -> None:
    wrapped = {
        "status": "success",
        "data": {"resultType": "vector", "result": [doc, {"metric": doc, "value": doc}]},
    }
    try:
        result = series_from_query(json.dumps(wrapped))
    except QueryError:
        return
    build_hosts(result.series, NOW, 90.0)


def test_a_stale_mig_row_beside_fresh_ones_is_dropped() -> None:
    text = exposition_text_of("dcgm_metrics_a100_mig_2x1g5gb_2g10gb_active_runai.ini")
    fresh, old = int(NOW * 1000), int((NOW - 600) * 1000)
    instance_9 = 'GPU_I_ID="9"'
    stamped = "\n".join(
        f"{line} {old if instance_9 in line else fresh}" if line.startswith("DCGM") else line
        for line in text.splitlines()
    )
    gpu = build_hosts(parse_exposition(stamped).series, NOW, 90.0)[
        "nvidia-dcgm-exporter-q28k4"
    ].gpus[0]
    assert gpu.fault is None
    assert [m.gpu_instance_id for m in gpu.mig_devices] == [5, 7]
    every_row_old = "\n".join(
        f"{line} {old}" if line.startswith("DCGM") else line for line in text.splitlines()
    )
    gpu = build_hosts(parse_exposition(every_row_old).series, NOW, 90.0)[
        "nvidia-dcgm-exporter-q28k4"
    ].gpus[0]
    assert gpu.fault == "stale: no new sample for 10 min"
    assert [m.gpu_instance_id for m in gpu.mig_devices] == [5, 7, 9]


def exposition_text_of(name: str) -> str:
    return (CLUSTER / name).read_text()
