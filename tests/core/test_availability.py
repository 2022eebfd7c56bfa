"""What "free" means (DESIGN.md), and the colour the tray icon gets."""

from __future__ import annotations

import pytest

from gpu_tray.core.availability import host_units, is_gpu_free, summarize
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds

LIMITS = FreeThresholds(max_memory_mib=512, max_utilization_pct=10)


def gpu(**kw) -> GpuSample:
    base = dict(
        index=0,
        uuid="GPU-0",
        name="NVIDIA A100-SXM4-80GB",
        memory_total_mib=81920,
        memory_used_mib=4,
        utilization_pct=0,
    )
    base.update(kw)
    return GpuSample(**base)


@pytest.mark.parametrize(
    ("sample", "free"),
    [
        (gpu(), True),
        (gpu(memory_used_mib=512), True),
        (gpu(memory_used_mib=513), False),
        (gpu(utilization_pct=10), True),
        (gpu(utilization_pct=11), False),
        (gpu(utilization_pct=NA), True),  # MIG and some vGPUs never report it
        (gpu(memory_used_mib=NA), False),  # cannot tell: not free
        (gpu(processes=(GpuProcess(1, "python", 300, "bob"),)), False),
        (gpu(processes=(GpuProcess(1, "python", NA, None),)), False),
        (gpu(allocated=True), False),  # Slurm gave it to a job
        (gpu(allocated=False), True),
        (gpu(fault="GPU is lost"), False),
    ],
)
def test_is_gpu_free(sample: GpuSample, free: bool) -> None:
    assert is_gpu_free(sample, LIMITS) is free


def test_per_host_thresholds_apply() -> None:
    sample = gpu(memory_used_mib=900)
    assert not is_gpu_free(sample, LIMITS)
    assert is_gpu_free(sample, FreeThresholds(max_memory_mib=1024))


def test_stale_and_failed_hosts_have_no_free_units() -> None:
    ok = HostSnapshot("h", HostState.OK, gpus=(gpu(),))
    assert [u.free for u in host_units(ok, LIMITS)] == [True]
    stale = ok.as_stale(HostSnapshot("h", HostState.TIMEOUT, "No answer"))
    assert stale.stale and stale.gpus
    assert [u.free for u in host_units(stale, LIMITS)] == [False]


def snaps(*frees: bool, failing: int = 0) -> list[HostSnapshot]:
    out = [
        HostSnapshot(f"h{i}", HostState.OK, gpus=(gpu(memory_used_mib=0 if f else 9000),))
        for i, f in enumerate(frees)
    ]
    out += [HostSnapshot(f"down{i}", HostState.UNREACHABLE, "refused") for i in range(failing)]
    return out


@pytest.mark.parametrize(
    ("hosts", "watched", "colour", "free"),
    [
        (snaps(True, False), None, "green", 1),
        (snaps(False, False), None, "red", 0),
        (snaps(True, False), lambda u: False, "amber", 1),
        (snaps(True, False), lambda u: True, "green", 1),
        (snaps(failing=2), None, "grey", 0),
        ([], None, "grey", 0),
        (snaps(True, failing=1), None, "green", 1),
    ],
)
def test_summary_colour(hosts, watched, colour: str, free: int) -> None:
    summary = summarize(hosts, lambda _: LIMITS, watched)
    assert (summary.colour, summary.free) == (colour, free)


def test_summary_counts_failing_and_stale() -> None:
    good = HostSnapshot("a", HostState.OK, gpus=(gpu(),))
    stale = good.as_stale(HostSnapshot("a", HostState.TIMEOUT, "x"))
    s = summarize(
        [stale, HostSnapshot("b", HostState.AUTH_FAILED, "no")], lambda _: LIMITS, paused=True
    )
    assert (s.hosts_failing, s.hosts_stale, s.paused, s.free, s.total) == (2, 1, True, 0, 1)
    assert s.colour == "grey"


def test_a_host_still_connecting_is_not_failing() -> None:
    good = HostSnapshot("a", HostState.OK, gpus=(gpu(),))
    connecting = HostSnapshot("b", HostState.CONNECTING, "Connecting…")
    s = summarize([good, connecting], lambda _: LIMITS)
    assert (s.hosts_failing, s.hosts_total, s.colour) == (0, 2, "green")
    s = summarize([connecting], lambda _: LIMITS)
    assert (s.hosts_failing, s.colour) == (0, "grey")  # no data yet
