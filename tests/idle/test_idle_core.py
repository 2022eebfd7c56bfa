"""The pure idle logic (core/idle.py) and its rules (core/idle_rules.py), on replayed traces."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.idle import (
    MAX_GAP_S,
    IdleSample,
    IdleTracker,
    duration_text,
    idle_since,
    iso_utc,
    unit_samples,
)
from gpu_tray.core.idle_rules import IdleRules, ps_argv
from gpu_tray.core.rules import notification_text
from gpu_tray.core.settings import IdleSettings, WatchSpec
from tests.idle.traces import BLIP, BUSY, HOST, IDLE, T0, snapshots

S = IdleSettings()  # 5 %, 30 min


def samples(trace):
    return [unit_samples(s)[(HOST, 0, None)] for s in snapshots(trace)]


def since(trace, settings=S):
    return iso_utc(idle_since(samples(trace), settings))


def test_a_process_at_zero_percent_is_idle_since_its_first_low_sample():
    assert since(IDLE) == "2026-11-23T09:00:00Z"


def test_not_idle_before_after_min_has_passed():
    assert since(IDLE[:30]) is None  # minutes 0..29: 29 min
    assert since(IDLE[:31]) == "2026-11-23T09:00:00Z"  # minute 30: exactly 30 min


def test_one_blip_restarts_the_stretch():
    assert since(BLIP[:51]) is None  # minute 50: 29 min since minute 21
    assert since(BLIP) == "2026-11-23T09:21:00Z"


def test_a_busy_process_is_never_idle():
    assert since(BUSY) is None


def test_at_the_threshold_is_low_and_one_above_is_not():
    at = [(m, 5, ((1, "bob"),)) for m in range(0, 31)]
    above = [(m, 6, ((1, "bob"),)) for m in range(0, 31)]
    assert since(at) == "2026-11-23T09:00:00Z"
    assert since(above) is None


def test_no_process_or_unknown_utilisation_ends_the_stretch():
    released = [(m, 0, () if m == 10 else ((1, "bob"),)) for m in range(0, 50)]
    assert since(released) == "2026-11-23T09:11:00Z"
    unknown = [(m, None if m == 5 else 0, ((1, "bob"),)) for m in range(0, 50)]
    assert since(unknown) == "2026-11-23T09:06:00Z"


def test_a_gap_longer_than_max_gap_ends_the_stretch():
    assert MAX_GAP_S == 600
    ok_gap = [(m, 0, ((1, "bob"),)) for m in (0, 10, 20, 30)]  # 10 min apart: continues
    assert since(ok_gap) == "2026-11-23T09:00:00Z"
    big_gap = [(m, 0, ((1, "bob"),)) for m in (0, 11, 21, 41, 51, 61, 71)]
    assert since(big_gap) == "2026-11-23T09:41:00Z"


def test_settings_change_the_verdict():
    assert since(BLIP, IdleSettings(max_utilization_pct=50)) == "2026-11-23T09:00:00Z"
    assert since(IDLE, IdleSettings(after_min=60)) is None


def test_tracker_folds_polls_like_idle_since_and_seeds_from_history():
    snaps = snapshots(BLIP)
    tracker = IdleTracker(S)
    for s in snaps:
        tracker.observe(s)
    now = snaps[-1].polled_at.timestamp()
    assert iso_utc(tracker.idle_since((HOST, 0, None), now)) == "2026-11-23T09:21:00Z"
    assert tracker.stretch((HOST, 0, None)).users == ("alice.longname",)
    # Started at minute 40 with the first 40 minutes read from history.
    seeded = IdleTracker(S)
    for s in snaps[40:]:
        seeded.observe(s)
    seeded.seed((HOST, 0, None), [unit_samples(s)[(HOST, 0, None)] for s in snaps[:40]])
    assert iso_utc(seeded.idle_since((HOST, 0, None), now)) == "2026-11-23T09:21:00Z"


def test_mig_units_are_never_idle():
    from dataclasses import replace

    from gpu_tray.core.models import GpuProcess, MigDevice

    snap = snapshots(IDLE)[0]
    mig = MigDevice(0, "MIG-0", "3g.40gb", processes=(GpuProcess(1, "x", user="bob"),))
    gpu = replace(snap.gpus[0], mig_enabled=True, mig_devices=(mig,))
    out = unit_samples(replace(snap, gpus=(gpu,)))
    assert out == {(HOST, 0, 0): IdleSample(snap.polled_at.timestamp(), True, None, ("bob",))}


def test_duration_text():
    assert [duration_text(s) for s in (59, 60, 45 * 60, 7800, 7200, 90000, 86400 * 3)] == [
        "0 min",
        "1 min",
        "45 min",
        "2 h 10 min",
        "2 h",
        "1 d 1 h",
        "3 d",
    ]


# -- rules ----------------------------------------------------------------------------------


def run_rules(trace, rules):
    tracker = IdleTracker(rules.settings)
    fired = []
    for s in snapshots(trace):
        tracker.observe(s)
        for f in rules.observe(s, tracker, s.polled_at.timestamp()):
            fired.append((s.polled_at - T0, f))
    return fired


def test_idle_holder_rule_fires_once_per_stretch_with_its_payload():
    spec = WatchSpec(host=HOST, event="idle_holder")
    rules = IdleRules([spec], S, ssh_args_for=lambda h: ["-p", "2222", h])
    # Idle from 0, blip at 60, idle again from 61 to 120: two stretches, two firings.
    trace = [(m, 40 if m == 60 else 0, ((4242, "alice.longname"),)) for m in range(0, 121)]
    fired = run_rules(trace, rules)
    assert [when for when, _ in fired] == [timedelta(minutes=30), timedelta(minutes=91)]
    first = fired[0][1]
    assert notification_text([first]) == (
        "GPU held idle on gpu-node1",
        "gpu-node1: GPU 0 held by alice.longname, idle 30 min (at most 5%)",
    )
    assert first.payload() == {
        "event": "idle_holder",
        "host": "gpu-node1",
        "gpu": 0,
        "mig": None,
        "users": ["alice.longname"],
        "pids": [4242],
        "idle_since": "2026-11-23T09:00:00Z",
        "idle_s": 1800,
        "max_utilization_pct": 5,
        "command": "ssh -p 2222 gpu-node1 ps -o pid,etime,args -p 4242",
    }


def test_idle_holder_rule_scope_and_busy_gpu():
    other = IdleRules([WatchSpec(host="elsewhere", event="idle_holder")], S)
    assert run_rules(IDLE, other) == []
    gpu1 = IdleRules([WatchSpec(host=HOST, gpu=1, event="idle_holder")], S)
    assert run_rules(IDLE, gpu1) == []
    anywhere = IdleRules([WatchSpec(event="idle_holder")], S)
    assert run_rules(BUSY, anywhere) == []
    assert len(run_rules(IDLE, anywhere)) == 1


def test_own_reminder_is_off_by_default_and_fires_once_for_my_user():
    assert run_rules(IDLE, IdleRules([], S, own_user=lambda h: "alice.longname")) == []
    on = IdleSettings(remind_after_min=20)
    mine = IdleRules([], on, own_user=lambda h: "alice.longname")
    fired = run_rules(IDLE, mine)
    assert [w for w, _ in fired] == [timedelta(minutes=20)]
    f = fired[0][1]
    assert f.event == "idle_reminder"
    assert notification_text([f]) == (
        "Your GPU on gpu-node1 is idle",
        "gpu-node1: your GPU 0 has been idle for 20 min\n"
        "See it: ssh gpu-node1 ps -o pid,etime,args -p 4242",
    )
    assert run_rules(IDLE, IdleRules([], on, own_user=lambda h: "bob")) == []


def test_ps_argv_never_lets_a_destination_be_an_option():
    assert ps_argv(["-oProxyCommand=x"], [1, 2]) == [
        "ssh",
        "--",
        "-oProxyCommand=x",
        "ps",
        "-o",
        "pid,etime,args",
        "-p",
        "1,2",
    ]


# -- config ---------------------------------------------------------------------------------


def test_idle_table_defaults_and_values():
    assert parse_config("").idle == IdleSettings(5, 30.0, None)
    c = parse_config("[idle]\nmax_utilization_pct = 2\nafter_min = 45\nremind_after_min = 60\n")
    assert c.idle == IdleSettings(2, 45.0, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "\n[idle]\nmax_utilization_pct = 101\n",
            "config.toml, line 3: idle.max_utilization_pct: must be an integer "
            "from 0 to 100, got 101",
        ),
        (
            "[idle]\nafter_min = \"soon\"\n",
            'config.toml, line 2: idle.after_min: must be a number, got "soon"',
        ),
        (
            "[idle]\nremind_after_min = 0\n",
            "config.toml, line 2: idle.remind_after_min: must be >= 1, got 0",
        ),
        (
            "[idle]\nafter = 3\n",
            "config.toml, line 2: idle.after: unknown key (expected one of: after_min, "
            "max_utilization_pct, remind_after_min)",
        ),
        (
            '[[watch]]\nevent = "idle"\n',
            'config.toml, line 2: watch[0].event: must be "free", "host_down" or "idle_holder", got "idle"',
        ),
        (
            '[[watch]]\nevent = "idle_holder"\ncount = 2\n',
            'config.toml, line 3: watch[0].count: is not used with event = "idle_holder" '
            "(only host and gpu)",
        ),
    ],
)
def test_bad_idle_config_names_file_key_and_line(text, message, tmp_path):
    from pathlib import Path

    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("config.toml"))
    assert str(err.value) == message


def test_idle_holder_watch_round_trips_through_config_edit(tmp_path):
    from gpu_tray.core.config import load_config
    from gpu_tray.core.config_edit import add_watch, edit_config

    path = tmp_path / "config.toml"
    path.write_text('[[hosts]]\nname = "gpu-node1"\n')
    spec = WatchSpec(host="gpu-node1", event="idle_holder")
    edit_config(path, lambda doc: add_watch(doc, spec))
    edit_config(path, lambda doc: add_watch(doc, spec))  # no duplicate
    assert load_config(path).watch == (spec,)
    assert spec.key == "host=gpu-node1;gpu=*;count=1;model=*;mem=0;event=idle_holder"


def test_seed_does_not_join_history_across_a_live_blip():
    snaps = snapshots(BLIP)  # blip at minute 20
    tracker = IdleTracker(S)
    for s in snaps[20:]:  # the app started at the blip
        tracker.observe(s)
    tracker.seed((HOST, 0, None), [unit_samples(s)[(HOST, 0, None)] for s in snaps[:20]])
    now = snaps[-1].polled_at.timestamp()
    assert iso_utc(tracker.idle_since((HOST, 0, None), now)) == "2026-11-23T09:21:00Z"


def test_stretches_are_the_held_idle_periods_idle_since_sees():
    from gpu_tray.core.idle import stretches

    t = T0.timestamp()
    # idle 0..44, busy 45..49, idle 50..69 (20 min: too short), released at 70.
    trace = [(m, 0 if m < 45 or 50 <= m < 70 else 90, ((1, "bob"),)) for m in range(0, 71)]
    trace[-1] = (70, 0, ())
    assert stretches(samples(trace), S) == [(t, t + 44 * 60)]
    assert stretches(samples(BLIP), S) == [(t + 21 * 60, t + 60 * 60)]
    assert stretches(samples(BUSY), S) == []
