"""When Slurm GPUs will free: squeue's EndTime and TimeLimit, parsed, joined to GPUs, and
read from a real Slurm with time-limited jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gpu_tray.core.report import status_document
from gpu_tray.core.settings import Config, SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.slurm.parse import node_snapshots, parse_end_times, parse_sinfo, parse_squeue
from gpu_tray.sources.slurm.probe import LocalRunner, SlurmProbe
from tests.harness.procs import skip_reason, wait_for
from tests.harness.slurm import BINARIES, FakeNode, SlurmCluster, running_cluster

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_end_times_parse_and_unlimited_jobs_have_none():
    text = (
        "101|2026-11-23T14:35:00|3:00:00|\n"
        "102|2027-11-23T12:00:00|UNLIMITED|\n"
        "103|Unknown|1-00:00:00|\n"
        "garbage\n"
    )
    assert parse_end_times(text) == {
        "101": datetime(2026, 11, 23, 14, 35, tzinfo=UTC),
        "102": None,
        "103": None,
    }


def test_a_gpu_frees_when_the_last_of_its_jobs_ends():
    nodes = parse_sinfo("n1|mixed|gpu:4|gpu:4(IDX:0-3)|gpu*|none|\n")
    jobs = parse_squeue(
        "1|alice|n1|gres/gpu:2|N/A|a|\n2|bob|n1|gres/gpu:1|N/A|b|\n3|carol|n1|gres/gpu:1|N/A|c|\n"
    )
    detail = {
        "1": {"n1": frozenset({0, 1})},
        "2": {"n1": frozenset({2})},
        "3": {"n1": frozenset({2, 3})},
    }
    ends = {
        "1": datetime(2026, 11, 23, 14, 35, tzinfo=UTC),
        "2": datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
        "3": None,  # no time limit
    }
    [snap] = node_snapshots(nodes, jobs, detail, NOW, ends=ends)
    assert [g.expected_free_at for g in snap.gpus] == [
        datetime(2026, 11, 23, 14, 35, tzinfo=UTC),
        datetime(2026, 11, 23, 14, 35, tzinfo=UTC),
        None,  # held by job 2 (13:00) and job 3 (no limit): nobody can say
        None,
    ]
    [old] = node_snapshots(nodes, jobs, detail, NOW)  # no end times known at all
    assert [g.expected_free_at for g in old.gpus] == [None] * 4


# -- a real Slurm -------------------------------------------------------------------------

NODES = (FakeNode("node1", 4, "fake"),)


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    if reason := skip_reason(*BINARIES, need_root=True):
        pytest.skip(reason)
    with running_cluster(NODES, "gpu-tray-slurm-ends-") as cluster:
        yield cluster


@pytest.mark.engines
@pytest.mark.slow
def test_real_slurm_time_limited_jobs_give_expected_free_at(slurm: SlurmCluster) -> None:
    probe = SlurmProbe(
        SourceConfig(kind="slurm", login="localhost"),
        Config(),
        NoSecrets(),
        runner=LocalRunner(slurm.env),
    )
    short = slurm.submit("--gres=gpu:2", "-w", "node1", "--time=30", "-J", "short")
    long = slurm.submit("--gres=gpu:1", "-w", "node1", "--time=2:00:00", "-J", "long")
    forever = slurm.submit("--gres=gpu:1", "-w", "node1", "-J", "forever")  # MaxTime=INFINITE
    try:
        wait_for(lambda: "(IDX:0-3)" in slurm.gres_used("node1"), 20, "jobs to hold 4 GPUs")

        def start(job: str) -> datetime:
            out = slurm.run(["env", "TZ=UTC", "squeue", "-h", "-j", job, "-o", "%S"]).stdout
            return datetime.strptime(out.strip(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)

        [snap] = probe.poll()
        by_job = {g.processes[0].name.split()[1]: g.expected_free_at for g in snap.gpus}
        assert by_job == {
            short: start(short) + timedelta(minutes=30),
            long: start(long) + timedelta(hours=2),
            forever: None,
        }
        assert sorted(
            (g.expected_free_at is None, g.processes[0].name) for g in snap.gpus
        ) == sorted(
            [
                (False, f"job {long} long"),
                (False, f"job {short} short"),
                (False, f"job {short} short"),
                (True, f"job {forever} forever"),
            ]
        )
        doc = status_document([snap], Config())
        iso = {
            job: None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")
            for job, t in by_job.items()
        }
        assert [g["expected_free_at"] for g in doc["hosts"][0]["gpus"]] == [
            iso[g.processes[0].name.split()[1]] for g in snap.gpus
        ]
    finally:
        slurm.run(["scancel", short, long, forever], check=False)
