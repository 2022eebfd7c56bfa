"""Watch rules: fire once per free period, never for a blip, never from old data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState, MigDevice
from gpu_tray.core.na import NA
from gpu_tray.core.rules import (
    Firing,
    RuleEngine,
    describe,
    gib_text,
    notification_text,
    short_model,
    ssh_args,
    ssh_command,
)
from gpu_tray.core.settings import FreeThresholds, HostConfig, WatchSpec

A100 = "NVIDIA A100-SXM4-80GB"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def limits(_host: str) -> FreeThresholds:
    return FreeThresholds()


def gpu(index: int, free: bool = True, model: str = A100, total: int = 81920, used: int = 0):
    if free:
        return GpuSample(index, f"GPU-{index}", model, total, used or 3, 0)
    return GpuSample(
        index,
        f"GPU-{index}",
        model,
        total,
        used or 40000,
        97,
        processes=(GpuProcess(100 + index, "python train.py", 39000, "a.very-long-username"),),
    )


def ok(host: str, *gpus: GpuSample) -> HostSnapshot:
    return HostSnapshot(host, HostState.OK, gpus=tuple(gpus), data_at=T0)


def down(host: str) -> HostSnapshot:
    return HostSnapshot(host, HostState.TIMEOUT, f"No answer from {host} within 10 s")


def stale(host: str, *gpus: GpuSample) -> HostSnapshot:
    return ok(host, *gpus).as_stale(down(host))


def node3(free2: bool) -> HostSnapshot:
    return ok("node3", gpu(0, False), gpu(1, False), gpu(2, free2), gpu(3, False))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def engine(*specs: WatchSpec, confirm: int = 2, clock: Clock | None = None) -> RuleEngine:
    return RuleEngine(list(specs), limits, confirm, clock=clock or Clock())


GPU2 = WatchSpec(host="node3", gpu=2)


def feed(e: RuleEngine, snaps: list[HostSnapshot]) -> list[list[Firing]]:
    return [e.observe(s) for s in snaps]


# -- property tests ---------------------------------------------------------------------------

# One poll of node3 as the rule sees it: GPU 2 free, busy, host down (no data), or a
# failed poll carrying the last good data (stale: GPU 2 looked free back then).
OBS = st.sampled_from(["free", "busy", "down", "stale"])


def snapshot_of(obs: str) -> HostSnapshot:
    if obs == "free":
        return node3(True)
    if obs == "busy":
        return node3(False)
    if obs == "down":
        return down("node3")
    return stale("node3", gpu(2, True))


def periods(seq: list[str]) -> list[list[int]]:
    """Indices of each free period: the polls between two polls that saw GPU 2 busy.
    A failed poll does not end a period: the GPU may have been free all along."""
    out: list[list[int]] = [[]]
    for i, obs in enumerate(seq):
        if obs == "busy":
            out.append([])
        else:
            out[-1].append(i)
    return [p for p in out if p]


def first_confirmed(seq: list[str], period: list[int], confirm: int) -> int | None:
    """Where a period first has `confirm` good free polls in a row (a failed poll breaks the run)."""
    run = 0
    for i in period:
        run = run + 1 if seq[i] == "free" else 0
        if run >= confirm:
            return i
    return None


@settings(max_examples=400, deadline=None)
@given(seq=st.lists(OBS, max_size=40), confirm=st.integers(1, 4))
def test_property_one_notification_per_free_period_exactly_when_confirmed(
    seq: list[str], confirm: int
) -> None:
    e = engine(GPU2, confirm=confirm)
    fired_at = [i for i, f in enumerate(feed(e, [snapshot_of(o) for o in seq])) if f]
    for period in periods(seq):
        in_period = [i for i in fired_at if i in period]
        # Never two notifications for one free period.
        assert len(in_period) <= 1, (seq, fired_at)
        expected = first_confirmed(seq, period, confirm)
        if expected is None:
            # Never one for a free period shorter than confirm_polls (or only stale/failed).
            assert in_period == [], (seq, fired_at)
        else:
            # Always one once it has been free for confirm_polls polls, at that poll.
            assert in_period == [expected], (seq, fired_at)
    # Never from a poll that did not itself see GPU 2 free.
    assert all(seq[i] == "free" for i in fired_at)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), OBS), max_size=50),
    confirm=st.integers(1, 3),
)
def test_property_cluster_rule_needs_a_false_moment_between_two_notifications(
    steps: list[tuple[str, str]], confirm: int
) -> None:
    e = engine(WatchSpec(count=1), confirm=confirm)
    latest: dict[str, str] = {}
    runs: dict[str, int] = {}
    false_since_last_fire = True
    for host, obs in steps:
        snap = snapshot_of(obs)
        snap = HostSnapshot(
            host,
            snap.state,
            snap.message,
            gpus=snap.gpus,
            stale=snap.stale,
            data_at=snap.data_at,
        )
        latest[host] = obs
        runs[host] = runs.get(host, 0) + 1 if obs == "free" else 0
        fired = e.observe(snap)
        if not any(v == "free" for v in latest.values()):
            false_since_last_fire = True
        if fired:
            assert len(fired) == 1
            assert fired[0].host == host and obs == "free" and runs[host] >= confirm
            assert false_since_last_fire, steps
            false_since_last_fire = False


# -- scopes -----------------------------------------------------------------------------------


def test_gpu_rule_fires_after_confirm_polls_with_a_ready_command() -> None:
    e = engine(GPU2)
    assert feed(e, [node3(False), node3(True)]) == [[], []]
    [firing] = e.observe(node3(True))
    assert firing.host == "node3"
    assert [u.gpu_index for u in firing.units] == [2]
    assert firing.command == "ssh -t node3 'export CUDA_VISIBLE_DEVICES=2; exec \"$SHELL\" -l'"
    assert firing.lines == ["node3: GPU 2 (A100 80GB) is free, 79 GiB"]
    # Still free: nothing more.
    assert feed(e, [node3(True)] * 5) == [[]] * 5


def test_confirm_polls_1_fires_on_the_first_free_poll() -> None:
    assert len(engine(GPU2, confirm=1).observe(node3(True))) == 1


def test_host_rule_needs_count_gpus_free_together_on_that_host() -> None:
    e = engine(WatchSpec(host="node3", count=2), confirm=1)
    assert e.observe(ok("node3", gpu(0), gpu(1, False))) == []
    assert e.observe(ok("other", gpu(0), gpu(1))) == []  # another host is not in scope
    [f] = e.observe(ok("node3", gpu(0), gpu(1, False), gpu(2)))
    assert [u.gpu_index for u in f.units] == [0, 2]
    assert "CUDA_VISIBLE_DEVICES=0,2;" in f.command


def test_cluster_rule_with_model_and_memory_picks_the_host_that_has_them() -> None:
    spec = WatchSpec(count=1, model="a100", min_free_memory_mib=40000)
    e = engine(spec, confirm=1)
    assert e.observe(ok("small", gpu(0, model=A100, total=40960, used=2000))) == []
    assert e.observe(ok("h100", gpu(0, model="NVIDIA H100 80GB HBM3", total=81559))) == []
    [f] = e.observe(ok("big", gpu(0, False), gpu(1, model=A100)))
    assert f.host == "big" and [u.gpu_index for u in f.units] == [1]


def test_unknown_memory_never_satisfies_min_free_memory() -> None:
    spec = WatchSpec(count=1, min_free_memory_mib=1)
    e = engine(spec, confirm=1)
    sample = GpuSample(0, "GPU-0", A100, NA, 3, 0)
    assert e.observe(ok("h", sample)) == []


def test_mig_units_are_watched_by_gpu_and_selected_by_uuid() -> None:
    migs = (
        MigDevice(
            0, "MIG-aaaa", "3g.40gb", 2, 0, 40448, 39000, (GpuProcess(5, "python", 38000, "u"),)
        ),
        MigDevice(1, "MIG-bbbb", "3g.40gb", 1, 0, 40448, 13),
    )
    mig_gpu = GpuSample(
        7, "GPU-7", "NVIDIA H100 80GB HBM3", 81559, 39013, NA, mig_enabled=True, mig_devices=migs
    )
    [f] = engine(WatchSpec(host="h100", gpu=7), confirm=1).observe(ok("h100", mig_gpu))
    assert [(u.gpu_index, u.mig_index) for u in f.units] == [(7, 1)]
    assert f.command == "ssh -t h100 'export CUDA_VISIBLE_DEVICES=MIG-bbbb; exec \"$SHELL\" -l'"
    assert f.lines == ["h100: GPU 7 MIG 1 (H100 80GB MIG 3g.40gb) is free, 39 GiB"]


# -- re-arm, down, stale, snooze --------------------------------------------------------------


def test_re_arms_only_after_it_was_false() -> None:
    e = engine(GPU2)
    fired = feed(e, [node3(True), node3(True), node3(True), node3(False), node3(True), node3(True)])
    assert [bool(f) for f in fired] == [False, True, False, False, False, True]


def test_a_blip_shorter_than_confirm_polls_never_fires() -> None:
    e = engine(GPU2, confirm=3)
    seq = [node3(True), node3(True), node3(False)] * 4
    assert not any(feed(e, seq))


def test_host_down_and_back_with_the_same_free_gpu_is_not_a_new_event() -> None:
    e = engine(GPU2)
    fired = feed(
        e, [node3(True), node3(True), down("node3"), down("node3"), node3(True), node3(True)]
    )
    assert [bool(f) for f in fired] == [False, True, False, False, False, False]
    # It has to be seen busy, then free again, to count as a new event.
    fired = feed(e, [node3(False), node3(True), node3(True)])
    assert [bool(f) for f in fired] == [False, False, True]


def test_host_back_from_down_with_gpus_really_free_fires_after_confirm_polls() -> None:
    e = engine(GPU2)
    fired = feed(e, [node3(False), down("node3"), node3(True), node3(True)])
    assert [bool(f) for f in fired] == [False, False, False, True]


def test_a_failed_poll_breaks_the_confirmation_run() -> None:
    e = engine(GPU2)
    fired = feed(e, [node3(True), down("node3"), node3(True), node3(True)])
    assert [bool(f) for f in fired] == [False, False, False, True]


def test_stale_data_never_fires_however_free_it_looked() -> None:
    e = engine(GPU2, confirm=1)
    assert feed(e, [stale("node3", gpu(2, True))] * 5) == [[]] * 5


def test_a_dead_host_does_not_block_a_cluster_rule_from_re_arming() -> None:
    e = engine(WatchSpec(count=1), confirm=1)
    assert e.observe(down("dead")) == []
    assert len(e.observe(ok("a", gpu(0)))) == 1
    assert e.observe(ok("a", gpu(0, False))) == []
    assert e.observe(down("dead")) == []
    assert len(e.observe(ok("a", gpu(0)))) == 1


def test_cluster_rule_stays_quiet_while_another_host_keeps_it_true() -> None:
    e = engine(WatchSpec(count=1), confirm=1)
    assert len(e.observe(ok("a", gpu(0)))) == 1
    assert e.observe(ok("b", gpu(0))) == []  # still the same free period
    assert e.observe(ok("a", gpu(0, False))) == []  # b still holds it
    assert e.observe(ok("b", gpu(0, False))) == []  # now false everywhere: re-armed
    [f] = e.observe(ok("b", gpu(0)))
    assert f.host == "b"


def test_snooze_holds_notifications_back_then_lets_one_through() -> None:
    clock = Clock()
    e = engine(GPU2, clock=clock)
    e.snooze([GPU2.key], 3600)
    assert e.snoozed_until(GPU2.key) == clock.now + 3600
    assert feed(e, [node3(True)] * 4) == [[]] * 4
    clock.now += 3601
    assert e.snoozed_until(GPU2.key) is None
    assert len(e.observe(node3(True))) == 1
    assert e.observe(node3(True)) == []


def test_snoozing_after_a_notification_silences_the_next_period_only_while_snoozed() -> None:
    clock = Clock()
    e = engine(GPU2, clock=clock)
    assert [bool(f) for f in feed(e, [node3(True)] * 2)] == [False, True]
    e.snooze([GPU2.key], 3600)
    assert not any(feed(e, [node3(False), node3(True), node3(True), node3(False)]))
    e.unsnooze()
    assert [bool(f) for f in feed(e, [node3(True)] * 2)] == [False, True]


def test_set_specs_keeps_the_state_of_rules_that_stay() -> None:
    e = engine(GPU2, confirm=1)
    assert len(e.observe(node3(True))) == 1
    other = WatchSpec(host="node3", count=1)
    e.set_specs([GPU2, other])
    [f] = e.observe(node3(True))  # only the new rule fires
    assert f.spec == other
    assert [s.armed for s in e.status()] == [False, False]


def test_matches_tells_which_free_units_a_rule_wants() -> None:
    e = engine(WatchSpec(model="H100"))
    from gpu_tray.core.availability import host_units

    [unit] = host_units(ok("x", gpu(0)), FreeThresholds())
    assert not e.matches(unit)
    assert engine(GPU2).matches(host_units(node3(True), FreeThresholds())[2])


# -- text and commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
        ("NVIDIA H100 80GB HBM3", "H100 80GB"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 2080 SUPER", "RTX 2080 SUPER"),
        ("Tesla T4", "T4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
        ("NVIDIA", "NVIDIA"),
    ],
)
def test_short_model(name: str, short: str) -> None:
    assert short_model(name) == short


@pytest.mark.parametrize(
    ("mib", "text"),
    [(81917, "79 GiB"), (10240, "10 GiB"), (9984, "9.7 GiB"), (512, "0.5 GiB"), (NA, "N/A")],
)
def test_gib_text_rounds_down(mib: object, text: str) -> None:
    assert gib_text(mib) == text


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (GPU2, "GPU 2 on node3"),
        (WatchSpec(host="node3"), "any GPU on node3"),
        (WatchSpec(host="node3", count=2), "any 2 GPUs on node3"),
        (WatchSpec(), "any GPU anywhere"),
        (
            WatchSpec(count=2, model="A100", min_free_memory_mib=40000),
            "any 2 A100 GPUs with 40000 MiB free anywhere",
        ),
    ],
)
def test_describe(spec: WatchSpec, text: str) -> None:
    assert describe(spec) == text


def test_several_rules_in_one_poll_make_one_message_listing_each_gpu_once() -> None:
    e = engine(GPU2, WatchSpec(host="node3", count=2), confirm=1)
    snap = ok("node3", gpu(0, False), gpu(1), gpu(2))
    firings = e.observe(snap)
    assert len(firings) == 2
    summary, body = notification_text(firings)
    assert summary == "2 GPUs free on node3"
    assert (
        body == "node3: GPU 2 (A100 80GB) is free, 79 GiB\nnode3: GPU 1 (A100 80GB) is free, 79 GiB"
    )
    one = engine(GPU2, confirm=1).observe(node3(True))
    assert notification_text(one) == (
        "GPU free on node3",
        "node3: GPU 2 (A100 80GB) is free, 79 GiB",
    )


def test_long_messages_are_cut_with_a_count() -> None:
    e = engine(WatchSpec(count=8), confirm=1)
    firings = e.observe(ok("big", *(gpu(i) for i in range(8))))
    summary, body = notification_text(firings)
    assert summary == "8 GPUs free on big"
    assert body.splitlines()[-1] == "and 2 more"
    assert len(body.splitlines()) == 7


def test_ssh_command_quotes_what_came_from_config_and_the_remote_side() -> None:
    assert ssh_command(["node3"], ["0", "1"]) == (
        "ssh -t node3 'export CUDA_VISIBLE_DEVICES=0,1; exec \"$SHELL\" -l'"
    )
    evil = ssh_command(["-oProxyCommand=x"], ["MIG-1;rm -rf ~"])
    assert evil == (
        "ssh -t -- -oProxyCommand=x "
        "'export CUDA_VISIBLE_DEVICES='\"'\"'MIG-1;rm -rf ~'\"'\"'; exec \"$SHELL\" -l'"
    )


def test_ssh_args_follow_the_host_config() -> None:
    host = HostConfig(
        name="node3",
        hostname="node3.lab.example.org",
        port=2222,
        user="alice",
        identity_file="~/.ssh/id_ed25519",
        proxy_jump="bastion,gateway",
    )
    assert ssh_args(host) == [
        "-p", "2222", "-J", "bastion,gateway", "-i", "~/.ssh/id_ed25519", "alice@node3.lab.example.org",
    ]  # fmt: skip
    assert ssh_args(HostConfig(name="gpu-node1")) == ["gpu-node1"]
    e = RuleEngine([GPU2], limits, 1, ssh_args_for=lambda h: ssh_args(host))
    [f] = e.observe(node3(True))
    assert f.command.startswith(
        "ssh -t -p 2222 -J bastion,gateway -i '~/.ssh/id_ed25519' alice@node3.lab.example.org "
    )


def test_confirm_polls_must_be_positive() -> None:
    with pytest.raises(ValueError, match="confirm_polls must be at least 1"):
        RuleEngine([], limits, 0)


def test_snapshot_time_does_not_matter_only_the_order() -> None:
    e = engine(GPU2)
    late = HostSnapshot(
        "node3", HostState.OK, gpus=node3(True).gpus, polled_at=T0 + timedelta(days=1)
    )
    assert [bool(f) for f in feed(e, [late, node3(True)])] == [False, True]
