"""Joining Slurm with a measuring source, and the [[sources]] options in config.toml."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpu_tray.core.availability import host_units
from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.join import (
    ALLOCATED_BUT_IDLE,
    BUSY_OUTSIDE_SLURM,
    host_notes,
    join_snapshots,
)
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState
from gpu_tray.core.settings import Config, FreeThresholds, HostConfig, SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.slurm.parse import node_snapshots, parse_sinfo, parse_squeue
from gpu_tray.sources.slurm.probe import SlurmProbe, login_host

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = FreeThresholds()


def measured(name: str, *gpus: GpuSample, source: str = "ssh", state=HostState.OK) -> HostSnapshot:
    return HostSnapshot(name, state, polled_at=NOW, gpus=gpus, source=source)


def gpu(index: int, used: int, util: int, procs: tuple[GpuProcess, ...] = ()) -> GpuSample:
    return GpuSample(index, f"GPU-{index}", "NVIDIA A100", 81920, used, util, processes=procs)


def slurm_view(line: str, squeue: str = "") -> HostSnapshot:
    [snap] = node_snapshots(parse_sinfo(line), parse_squeue(squeue), {}, NOW)
    return snap


def test_allocated_but_idle_and_busy_outside_slurm() -> None:
    ssh = measured(
        "gpu01",
        gpu(0, 0, 0),  # allocated by Slurm, idle
        gpu(1, 30000, 95, (GpuProcess(4242, "python", 30000, "mallory"),)),  # busy, not allocated
        gpu(2, 0, 0),  # free both ways
        gpu(3, 20000, 80, (GpuProcess(77, "train", 20000, "alice"),)),  # allocated and busy
    )
    slurm = slurm_view(
        "gpu01.cluster.example.org|mixed|gpu:a100:4|gpu:a100:2(IDX:0,3)|gpu|none|\n",
        "11|alice|gpu01.cluster.example.org|gres/gpu:2|N/A|train|\n",
    )
    [joined] = join_snapshots([ssh, slurm])
    assert (joined.name, joined.source, joined.node_state) == ("gpu01", "ssh+slurm", "mixed")
    assert [g.allocated for g in joined.gpus] == [True, False, False, True]
    assert host_notes(joined, lambda _: LIMITS) == {0: ALLOCATED_BUT_IDLE, 1: BUSY_OUTSIDE_SLURM}
    # Only the GPU that is neither allocated nor busy is free.
    assert [u.free for u in host_units(joined, LIMITS)] == [False, False, True, False]
    # The measured processes stay the truth about who runs what.
    assert joined.gpus[1].users == ("mallory",)


def test_unmatched_and_failing_sides() -> None:
    slurm_only = slurm_view("gpu09|idle|gpu:2|gpu:0|gpu|none|\n")
    prom = measured("other-node", gpu(0, 0, 0), source="prometheus")
    assert join_snapshots([prom, slurm_only]) == [prom, slurm_only]
    # Slurm failing: the measurement is kept as it is (allocation unknown).
    failing = HostSnapshot("gpu01", HostState.UNREACHABLE, "sinfo failed", source="slurm")
    ssh = measured("gpu01", gpu(0, 0, 0))
    [joined] = join_snapshots([ssh, failing])
    assert joined.gpus == ssh.gpus and joined.source == "ssh+slurm"
    # The measuring side never answered: Slurm's GPUs, under its state.
    down = HostSnapshot("gpu01", HostState.TIMEOUT, "no answer", source="ssh")
    [joined] = join_snapshots([down, slurm_view("gpu01|idle|gpu:2|gpu:0|gpu|none|\n")])
    assert joined.state is HostState.TIMEOUT and len(joined.gpus) == 2
    assert [u.free for u in host_units(joined, LIMITS)] == [False, False]


def test_drained_node_stays_unavailable_when_joined() -> None:
    ssh = measured("gpu01", gpu(0, 0, 0))
    [joined] = join_snapshots([ssh, slurm_view("gpu01|drained|gpu:1|gpu:0|gpu|fan|\n")])
    assert joined.gpus[0].fault == "not available: node drained (fan)"
    assert [u.free for u in host_units(joined, LIMITS)] == [False]


def test_ambiguous_short_names_are_not_joined() -> None:
    a = measured("gpu01.site-a", gpu(0, 0, 0))
    b = measured("gpu01.site-b", gpu(0, 0, 0))
    s = slurm_view("gpu01|idle|gpu:1|gpu:0|gpu|none|\n")
    assert join_snapshots([a, b, s]) == [a, b, s]


# -- config ------------------------------------------------------------------------------

CFG = Path("/home/u/.config/gpu-tray/config.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\nauth = "token"\n',
            f'{CFG}, line 4: sources[0].auth: must be "none", "bearer" or "basic", got "token"',
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\nauth = "basic"\n',
            f'{CFG}, line 4: sources[0].auth: auth = "basic" needs username = "..." in the same entry',
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\nusername = "al"\n',
            f'{CFG}, line 4: sources[0].username: is only used with auth = "basic"',
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\ntimeout_s = "10"\n',
            f'{CFG}, line 4: sources[0].timeout_s: must be a number, got "10"',
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\n\nstale_after_s = 0\n',
            f"{CFG}, line 5: sources[0].stale_after_s: must be >= 1, got 0",
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\nhost_label = "k8s-node"\n',
            f"{CFG}, line 4: sources[0].host_label: 'k8s-node' is not a Prometheus label name",
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\nlogin = "x"\n',
            f"{CFG}, line 4: sources[0].login: unknown key (expected one of: auth, ca_file, host_label, kind, name, stale_after_s, timeout_s, url, username)",
        ),
        (
            '[[hosts]]\nname = "a"\n\n[[sources]]\nkind = "slurm"\nlogin = "login1"\npartitions = ["gpu", ""]\n',
            f'{CFG}, line 7: sources[0].partitions: must be a list of partition names like ["gpu"], got list',
        ),
        (
            '[[sources]]\nkind = "slurm"\nlogin = "login1"\ntimeout_s = 1000\n',
            f"{CFG}, line 4: sources[0].timeout_s: must be from 1 to 600, got 1000",
        ),
        (
            '[[sources]]\nkind = "slurm"\nlogin = "login1"\nurl = "http://x"\n',
            f"{CFG}, line 4: sources[0].url: unknown key (expected one of: kind, login, name, partitions, timeout_s)",
        ),
        (
            '[[sources]]\nkind = "prometheus"\nurl = "http://p:9090"\ntoken = "abc"\n',
            f"{CFG}, line 4: sources[0].token: secrets never go in config.toml; store it in the system keyring with `gpu-tray password set HOST` or the Settings dialog",
        ),
    ],
)
def test_source_option_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, CFG)
    assert str(err.value) == message


def test_source_options_accepted() -> None:
    config = parse_config(
        '[[hosts]]\nname = "login1"\nuser = "alice"\nport = 2222\n\n'
        '[[sources]]\nkind = "prometheus"\nurl = "https://prom.example:9090/prometheus"\n'
        'auth = "basic"\nusername = "alice"\ntimeout_s = 5\nstale_after_s = 60\n'
        'host_label = "kubernetes_node"\nca_file = "/etc/ssl/site.pem"\n\n'
        '[[sources]]\nkind = "slurm"\nlogin = "login1"\nname = "hpc"\npartitions = ["gpu"]\ntimeout_s = 20\n',
        CFG,
    )
    prom, slurm = config.sources
    assert prom.options == {
        "auth": "basic",
        "username": "alice",
        "timeout_s": 5,
        "stale_after_s": 60,
        "host_label": "kubernetes_node",
        "ca_file": "/etc/ssl/site.pem",
    }
    probe = SlurmProbe(slurm, config, NoSecrets())
    assert (probe.name, probe.partitions, probe.timeout_s) == ("hpc", ("gpu",), 20.0)
    # The login node is reached like the [[hosts]] entry of the same name.
    assert login_host(slurm, config) == HostConfig(name="login1", port=2222, user="alice")
    other = replace(slurm, login="elsewhere")
    assert login_host(other, Config()) == HostConfig(name="elsewhere")


# -- the Slurm probe's own failure paths -----------------------------------------------------


class FailingRunner:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.resets = 0

    def run(self, command: str, timeout_s: float):
        raise self.failure

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def test_slurm_login_host_key_unknown_carries_the_key() -> None:
    from gpu_tray.core.models import HostKeyInfo
    from gpu_tray.sources.slurm.probe import CommandFailure

    key = HostKeyInfo("[127.0.0.9]:2222", "ssh-ed25519", "SHA256:abc", "AAAA")
    runner = FailingRunner(
        CommandFailure(HostState.HOST_KEY_UNKNOWN, "Unknown host key for login1", key)
    )
    probe = SlurmProbe(SourceConfig(kind="slurm", login="login1"), Config(), NoSecrets(), runner)
    [snap] = probe.poll()
    assert (snap.name, snap.state, snap.message, snap.host_key, snap.source) == (
        "slurm:login1",
        HostState.HOST_KEY_UNKNOWN,
        "Unknown host key for login1",
        key,
        "slurm",
    )
    assert probe.name == "slurm:login1"  # Poller.reset("slurm:login1") finds the probe
    probe.reset()
    assert runner.resets == 1


def test_slurm_without_sinfo_on_the_login_node(tmp_path: Path) -> None:
    from gpu_tray.sources.slurm.probe import LocalRunner

    env = {"PATH": str(tmp_path)}  # a login node without Slurm's client
    probe = SlurmProbe(
        SourceConfig(kind="slurm", login="login1"), Config(), NoSecrets(), LocalRunner(env)
    )
    assert [(s.name, s.state.value, s.message) for s in probe.poll()] == [
        (
            "slurm:login1",
            "bad_output",
            "sinfo not found on login1: is Slurm's client installed there, "
            "and on the PATH of a non-interactive shell?",
        )
    ]


def test_slurm_commands_that_hang_time_out(tmp_path: Path) -> None:
    from gpu_tray.sources.slurm.probe import LocalRunner

    (tmp_path / "sinfo").write_text("#!/bin/sh\nexec sleep 30\n")
    (tmp_path / "sinfo").chmod(0o755)
    probe = SlurmProbe(
        SourceConfig(kind="slurm", login="login1", options={"timeout_s": 1}),
        Config(),
        NoSecrets(),
        LocalRunner({"PATH": f"{tmp_path}:/usr/bin:/bin"}),
    )
    assert [(s.state.value, s.message) for s in probe.poll()] == [
        ("timeout", "Slurm commands did not finish within 1 s")
    ]
