"""The Slurm parsers over every real Slurm output in the fixtures, and mangled input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_tray.core.availability import host_units
from gpu_tray.core.models import HostState
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.sources.slurm.parse import (
    ParseStats,
    SlurmJob,
    expand_hostlist,
    gpu_request,
    node_snapshots,
    parse_gres,
    parse_job_detail,
    parse_scontrol_nodes,
    parse_sinfo,
    parse_sinfo_json,
    parse_sinfo_table,
    parse_squeue,
    parse_squeue_json,
    parse_squeue_table,
    unavailable_reason,
)
from gpu_tray.sources.slurm.probe import MARK, POLL_SCRIPT, split_sections

CLUSTER = Path(__file__).resolve().parent.parent / "fixtures" / "cluster"
LOCAL = CLUSTER / "generated_local"
NOW = datetime(2026, 11, 22, 14, 42, 10, tzinfo=UTC)
SLURM_FILES = sorted([*CLUSTER.glob("*slurm*"), *LOCAL.glob("*slurm*")])


def read(name: str) -> str:
    return ((LOCAL if name.startswith("GENERATED") else CLUSTER) / name).read_text()


def gpus_of(nodes) -> dict[str, tuple[int, int | None, frozenset[int] | None, str]]:
    return {n.name: (n.total_gpus, n.used_count, n.used_indices, n.state) for n in nodes.values()}


def test_every_slurm_fixture_has_a_test() -> None:
    tested = {
        *SCONTROL_NODES,
        *SINFO_TABLES,
        "GENERATED_LOCAL_slurm22.05_sinfo_N_h_o_pipe.txt",
        "GENERATED_LOCAL_slurm22.05_sinfo_json.json",
        "GENERATED_LOCAL_slurm22.05_2node_sinfo_json.json",
        "GENERATED_LOCAL_slurm22.05_squeue_json.json",
        "GENERATED_LOCAL_slurm22.05_2node_squeue_json.json",
        "GENERATED_LOCAL_slurm22.05_squeue_O_tres.txt",
        "GENERATED_LOCAL_slurm22.05_2node_squeue_O_tres.txt",
        "GENERATED_LOCAL_slurm22.05_squeue_h_o_pipe_b.txt",
        "GENERATED_LOCAL_slurm22.05_scontrol_d_show_job.txt",
        "GENERATED_LOCAL_slurm22.05_2node_scontrol_d_show_job.txt",
    }
    assert {p.name for p in SLURM_FILES} == tested


SCONTROL_NODES = {
    # Typed GRES, allocation only in AllocTRES (site with slurmdbd), 21.08 and 24.05.
    "EDITED_slurm_scontrol_show_node_t4x6_mixed_gres2_aau_21.08.8_reindented.txt": {
        "a256-t4-01": (6, 2, None, "mixed")
    },
    "EDITED_slurm_scontrol_show_node_v100x4_mixed_uci_hpc3_24.05_flattened_indent.txt": {
        "hpc3-gpu-16-00": (4, 4, None, "mixed")
    },
    # Untyped gpu:6, idle, CfgTRES has gres/gpu and AllocTRES is empty: 0 allocated.
    "slurm_scontrol_show_node_gpu6_idle_aau_21.08.0.txt": {
        "a256-t4-01.srv.aau.dk": (6, 0, None, "idle")
    },
    # No slurmdbd: only GresUsed (-d) tells; without -d nothing does.
    "GENERATED_LOCAL_slurm22.05_scontrol_show_node.txt": {"vm": (4, None, None, "allocated")},
    "GENERATED_LOCAL_slurm22.05_scontrol_d_show_node.txt": {
        "vm": (4, 3, frozenset({0, 1, 2}), "allocated")
    },
    "GENERATED_LOCAL_slurm22.05_scontrol_o_d_show_node.txt": {
        "vm": (4, 3, frozenset({0, 1, 2}), "allocated")
    },
    "GENERATED_LOCAL_slurm22.05_2node_scontrol_d_show_node.txt": {
        "vm": (4, 3, frozenset({0, 1, 2}), "mixed"),
        "vm2": (2, 1, frozenset({0}), "mixed"),
    },
    "GENERATED_LOCAL_slurm22.05_2node_scontrol_o_d_show_node.txt": {
        "vm": (4, 3, frozenset({0, 1, 2}), "mixed"),
        "vm2": (2, 1, frozenset({0}), "mixed"),
    },
}


@pytest.mark.parametrize("name", sorted(SCONTROL_NODES))
def test_scontrol_show_node(name: str) -> None:
    nodes = parse_scontrol_nodes(read(name))
    assert gpus_of(nodes) == SCONTROL_NODES[name]


def test_typed_gres_names_the_model() -> None:
    nodes = parse_scontrol_nodes(
        read("EDITED_slurm_scontrol_show_node_v100x4_mixed_uci_hpc3_24.05_flattened_indent.txt")
    )
    assert nodes["hpc3-gpu-16-00"].gpu_types == ["V100"] * 4
    assert nodes["hpc3-gpu-16-00"].partitions == ["free-gpu", "gpu"]


SINFO_TABLES = {
    "EDITED_slurm_sinfo_NO_CPUsState_Memory_AllocMem_Gres_GresUsed_NodeList_uci_hpc3_24.05_dedented.txt": (
        {
            "hpc3-gpu-16-00": (4, 4, frozenset({0, 1, 2, 3}), ""),
            "hpc3-gpu-16-02": (4, 3, frozenset({0, 1, 3}), ""),
            "hpc3-gpu-17-04": (4, 3, frozenset({0, 2, 3}), ""),
            "hpc3-gpu-18-00": (4, 0, frozenset(), ""),
            "hpc3-gpu-18-01": (4, 4, frozenset({0, 1, 2, 3}), ""),
            "hpc3-gpu-18-02": (4, 4, frozenset({0, 1, 2, 3}), ""),
            "hpc3-gpu-18-03": (4, 2, frozenset({0, 2}), ""),
            "hpc3-gpu-18-04": (4, 1, frozenset({3}), ""),
            "hpc3-gpu-24-05": (4, 0, frozenset(), ""),
            "hpc3-gpu-24-08": (4, 1, frozenset({0}), ""),
            "hpc3-gpu-k54-01": (4, 0, frozenset(), ""),
            "hpc3-gpu-l54-03": (2, 2, frozenset({0, 1}), ""),
            "hpc3-gpu-l54-07": (4, 0, frozenset(), ""),
        },
        0,
    ),
    "GENERATED_LOCAL_slurm22.05_2node_sinfo_N_O_Gres_GresUsed.txt": (
        {"vm": (4, 3, frozenset({0, 1, 2}), "mixed"), "vm2": (2, 1, frozenset({0}), "mixed")},
        0,
    ),
    # NodeHost: both nodes run on host "vm", so their rows merge under one name.
    # That is why the poll script asks for NodeList.
    "GENERATED_LOCAL_slurm22.05_2node_sinfo_N_O_default_widths_COLUMNS_RUN_TOGETHER.txt": (
        {"vm": (4, 3, frozenset({0, 1, 2}), "mixed")},
        0,
    ),
    "GENERATED_LOCAL_slurm22.05_sinfo_N_O_NodeHost_Gres_GresUsed_StateLong.txt": (
        {"vm": (4, 3, frozenset({0, 1, 2}), "allocated")},
        0,
    ),
    "GENERATED_LOCAL_slurm22.05_sinfo_N_O_wide.txt": (
        {"vm": (4, 3, frozenset({0, 1, 2}), "alloc")},
        0,
    ),
    "GENERATED_LOCAL_slurm22.05_final_before.txt": (
        {"vm": (4, 0, frozenset(), ""), "vm2": (2, 0, frozenset(), "")},
        0,
    ),
    "GENERATED_LOCAL_slurm22.05_final_after_srun_gres2.txt": (
        {"vm": (4, 2, frozenset({0, 1}), ""), "vm2": (2, 0, frozenset(), "")},
        0,
    ),
}


@pytest.mark.parametrize("name", sorted(SINFO_TABLES))
def test_sinfo_tables(name: str) -> None:
    stats = ParseStats()
    expected, bad = SINFO_TABLES[name]
    assert gpus_of(parse_sinfo_table(read(name), stats)) == expected
    assert stats.bad_lines == bad


def test_columns_that_run_together_are_bad_lines_not_guesses() -> None:
    text = "NODELIST            GRES                GRES_USED           STATE\nvm2                 gpu:fake2:2         gpu:fake2:0(IDX:N/A)idle\n"
    stats = ParseStats()
    assert parse_sinfo_table(text, stats) == {}
    assert stats.bad_lines == 1


def test_sinfo_pipe_format() -> None:
    # `sinfo -N -h -o %N|%G|%T|%C`: -o has no GresUsed field (hence -O in the poll
    # script), so put its columns in the script's order with GresUsed empty.
    rows = [
        line.split("|")
        for line in read("GENERATED_LOCAL_slurm22.05_sinfo_N_h_o_pipe.txt").splitlines()
    ]
    nodes = parse_sinfo("".join(f"{n}|{state}|{gres}||debug|none|\n" for n, gres, state, _ in rows))
    assert gpus_of(nodes) == {"vm": (4, None, None, "allocated")}
    [snap] = node_snapshots(nodes, None, {}, NOW)
    assert [g.allocated for g in snap.gpus] == [None] * 4  # Slurm said nothing: unknown
    assert [u.free for u in host_units(snap, FreeThresholds())] == [False] * 4
    # With the running jobs known (none here), nothing is allocated.
    [snap] = node_snapshots(nodes, [], {}, NOW)
    assert [g.allocated for g in snap.gpus] == [False] * 4


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "GENERATED_LOCAL_slurm22.05_sinfo_json.json",
            {"vm": (4, 3, frozenset({0, 1, 2}), "allocated")},
        ),
        (
            "GENERATED_LOCAL_slurm22.05_2node_sinfo_json.json",
            {"vm": (4, 3, frozenset({0, 1, 2}), "mixed"), "vm2": (2, 1, frozenset({0}), "mixed")},
        ),
    ],
)
def test_sinfo_json(name: str, expected: dict) -> None:
    assert gpus_of(parse_sinfo_json(read(name))) == expected


def test_squeue_json_and_gres_detail() -> None:
    jobs, detail = parse_squeue_json(read("GENERATED_LOCAL_slurm22.05_2node_squeue_json.json"))
    assert [(j.job_id, j.user, j.nodes, j.gpus_per_node, j.gpus_per_job) for j in jobs] == [
        ("1", "root", ("vm2",), 1, None),  # --gres=gpu:fake2:1, typed
        ("2", "root", ("vm",), 2, None),  # srun --gres=gpu:2
        ("3", "root", ("vm",), None, 1),  # --gpus=1: tres-per-job
    ]
    assert detail == {
        "1": {"vm2": frozenset({0})},
        "2": {"vm": frozenset({0, 1})},
        "3": {"vm": frozenset({2})},
    }
    jobs, detail = parse_squeue_json(read("GENERATED_LOCAL_slurm22.05_squeue_json.json"))
    assert [(j.job_id, j.gpus_per_node, j.gpus_per_job) for j in jobs] == [
        ("1", 2, None),
        ("2", None, 1),
    ]
    assert detail == {"1": {"vm": frozenset({0, 1})}, "2": {"vm": frozenset({2})}}


def test_squeue_tables() -> None:
    stats = ParseStats()
    jobs = parse_squeue_table(read("GENERATED_LOCAL_slurm22.05_squeue_O_tres.txt"), stats)
    assert [(j.job_id, j.name, j.nodes, j.gpus_per_node, j.gpus_per_job) for j in jobs] == [
        ("1", "tray-test-srun", ("vm",), 2, None),
        ("2", "tray-test-gpus1", ("vm",), None, 1),
    ]
    assert stats.bad_lines == 1  # the pending job has an empty NODELIST column
    # Default widths: the header itself ran together (NODELITRES_PER_NODE); every row is unreadable.
    stats = ParseStats()
    assert (
        parse_squeue_table(read("GENERATED_LOCAL_slurm22.05_2node_squeue_O_tres.txt"), stats) == []
    )
    assert stats.bad_lines == 3


def test_squeue_pipe_b_format() -> None:
    # `squeue -h -o %i|%j|%T|%b|%N|%R`: %b (tres-per-node) is N/A for a --gpus job.
    lines = read("GENERATED_LOCAL_slurm22.05_squeue_h_o_pipe_b.txt").splitlines()
    rows = [line.split("|") for line in lines]
    assert [(r[0], r[2], gpu_request(r[3]), expand_hostlist(r[4])) for r in rows] == [
        ("3", "PENDING", 4, []),
        ("1", "RUNNING", 2, ["vm"]),
        ("2", "RUNNING", None, ["vm"]),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "GENERATED_LOCAL_slurm22.05_scontrol_d_show_job.txt",
            {"1": {"vm": frozenset({0, 1})}, "2": {"vm": frozenset({2})}},
        ),
        (
            "GENERATED_LOCAL_slurm22.05_2node_scontrol_d_show_job.txt",
            {
                "1": {"vm2": frozenset({0})},
                "2": {"vm": frozenset({0, 1})},
                "3": {"vm": frozenset({2})},
            },
        ),
    ],
)
def test_job_detail(name: str, expected: dict) -> None:
    assert parse_job_detail(read(name)) == expected


def test_snapshots_from_the_2node_cluster() -> None:
    nodes = parse_scontrol_nodes(read("GENERATED_LOCAL_slurm22.05_2node_scontrol_d_show_node.txt"))
    jobs, detail = parse_squeue_json(read("GENERATED_LOCAL_slurm22.05_2node_squeue_json.json"))
    snaps = node_snapshots(nodes, jobs, detail, NOW, 12.0)
    assert [(s.name, s.state, s.source, s.node_state) for s in snaps] == [
        ("vm", HostState.OK, "slurm", "mixed"),
        ("vm2", HostState.OK, "slurm", "mixed"),
    ]
    vm = snaps[0]
    assert [(g.index, g.name, g.allocated, g.users) for g in vm.gpus] == [
        (0, "fake", True, ("root",)),
        (1, "fake", True, ("root",)),
        (2, "fake", True, ("root",)),
        (3, "fake", False, ()),
    ]
    assert [p.name for p in vm.gpus[2].processes] == ["job 3 tray-gpus-per-job"]
    limits = FreeThresholds()
    assert [u.free for s in snaps for u in host_units(s, limits)] == [
        False,
        False,
        False,
        True,
        False,
        True,
    ]


def test_without_indices_the_count_still_holds() -> None:
    # Untyped GRES without File= prints GresUsed as "gpu:1", with no IDX.
    nodes = parse_sinfo("n1|mixed|gpu:2|gpu:1|debug*|none|\n")
    jobs = parse_squeue("7|alice|n1|N/A|gres/gpu:1|train|\n")
    [snap] = node_snapshots(nodes, jobs, {}, NOW)
    assert [(g.allocated, g.users) for g in snap.gpus] == [(True, ("alice",)), (False, ())]


def test_drained_and_down_nodes_are_not_available() -> None:
    text = (
        "n1|drained|gpu:a100:2|gpu:a100:0(IDX:N/A)|gpu|maintenance: fan|\n"
        "n2|down*|gpu:a100:2|gpu:a100:0(IDX:N/A)|gpu|Not responding|\n"
        "n3|idle|gpu:a100:2|gpu:a100:0(IDX:N/A)|gpu|none|\n"
        "n4|mixed|(null)|(null)|cpu|none|\n"
    )
    snaps = node_snapshots(parse_sinfo(text), [], {}, NOW)
    assert [s.name for s in snaps] == ["n1", "n2", "n3"]  # no GPUs, not listed
    assert snaps[0].gpus[0].fault == "not available: node drained (maintenance: fan)"
    assert snaps[1].gpus[0].fault == "not available: node down* (Not responding)"
    limits = FreeThresholds()
    assert [u.free for s in snaps for u in host_units(s, limits)] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("idle", None),
        ("mixed", None),
        ("allocated", None),
        ("idle~", None),
        ("completing", None),
        ("drained", "drained"),
        ("draining", "draining"),
        ("down", "down"),
        ("down*", "not responding"),
        ("idle*", "not responding"),
        ("mixed+drain", "drain"),
        ("fail", "fail"),
        ("inval", "inval"),
        ("maint", "maint"),
        ("reboot^", "reboot"),
        ("IDLE+DRAIN", "drain"),
        ("", None),
    ],
)
def test_node_states(state: str, reason: str | None) -> None:
    assert unavailable_reason(state) == reason


def test_partition_filter() -> None:
    text = "a|idle|gpu:1|gpu:0|gpu|none|\nb|idle|gpu:1|gpu:0|debug*|none|\na|idle|gpu:1|gpu:0|long|none|\n"
    nodes = parse_sinfo(text)
    assert nodes["a"].partitions == ["gpu", "long"]
    assert [s.name for s in node_snapshots(nodes, [], {}, NOW, partitions=["gpu"])] == ["a"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("gres:gpu:2", 2),
        ("gres/gpu:2", 2),
        ("gres/gpu:a100:2", 2),
        ("gres:gpu:fake2:1", 1),
        ("gres/gpu=4", 4),
        ("gres/gpu:a100=3", 3),
        ("gres/gpu", 1),
        ("gres:gpu:1,gres:mps:10", 1),
        ("gres/shard:2", None),
        ("N/A", None),
        ("", None),
        ("cpu=1,mem=1000M", None),
    ],
)
def test_gpu_requests(text: str, count: int | None) -> None:
    assert gpu_request(text) == count


def test_gres_forms() -> None:
    entries = parse_gres("gpu:a100:1(IDX:0),gpu:v100:2(IDX:1-2),mps:400,shard:8(S:0)")
    assert [(e.name, e.type, e.count, e.indices) for e in entries] == [
        ("gpu", "a100", 1, frozenset({0})),
        ("gpu", "v100", 2, frozenset({1, 2})),
        ("mps", None, 400, None),
        ("shard", None, 8, None),
    ]
    node = parse_sinfo(
        "m|mixed|gpu:a100:1(S:0),gpu:v100:2(S:1)|gpu:a100:1(IDX:0),gpu:v100:0(IDX:N/A)|p|none|\n"
    )["m"]
    assert (node.gpu_types, node.used_count, node.used_indices) == (
        ["a100", "v100", "v100"],
        1,
        frozenset({0}),
    )


def test_hostlists() -> None:
    assert expand_hostlist("gpu[01-03,7],login") == ["gpu01", "gpu02", "gpu03", "gpu7", "login"]
    assert expand_hostlist("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert expand_hostlist("") == []
    assert expand_hostlist("bad[x-y]") == ["bad[x-y]"]


def test_poll_script_sections() -> None:
    # Nothing is interpolated at run time: the script is one constant string.
    assert "{" not in POLL_SCRIPT and "sinfo -h -N -O 'NodeList:0|," in POLL_SCRIPT
    text = f"{MARK} sinfo\nn1|idle|gpu:1|gpu:0|p|none|\n{MARK} rc 0\n{MARK} squeue\n{MARK} rc 1\n"
    sections = split_sections(text)
    assert sections.bodies == {"sinfo": "n1|idle|gpu:1|gpu:0|p|none|", "squeue": ""}
    assert sections.codes == {"sinfo": 0, "squeue": 1}


# -- mangled input never raises ------------------------------------------------------------

ALL_TEXT = "\n".join(p.read_text() for p in SLURM_FILES)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mangled_slurm_output_never_raises(data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(ALL_TEXT)))
    size = data.draw(st.integers(0, 3000))
    noise = data.draw(st.text(alphabet="|:,()[]-=0123456789 \nIDXN/Agpures*~", max_size=40))
    text = ALL_TEXT[cut : cut + size] + noise
    nodes = parse_sinfo(text)
    nodes.update(parse_sinfo_table(text))
    nodes.update(parse_scontrol_nodes(text))
    nodes.update(parse_sinfo_json(text))
    jobs = parse_squeue(text) + parse_squeue_table(text)
    more, detail = parse_squeue_json(text)
    detail.update(parse_job_detail(text))
    split_sections(text)
    node_snapshots(nodes, [*jobs, *more], detail, NOW)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="gpu:abc0123456789(),IDX/N-=[]", max_size=40))
def test_gres_and_hostlists_never_raise(text: str) -> None:
    parse_gres(text)
    gpu_request(text)
    expand_hostlist(text)
    node_snapshots(
        parse_sinfo(f"n|idle|{text}|{text}|p|none|\n"),
        [SlurmJob("1", "u", "j", ("n",), gpu_request(text), None)],
        parse_job_detail(f"JobId=1\nNodes=n CPU_IDs=0 Mem=0 GRES={text}"),
        NOW,
    )
