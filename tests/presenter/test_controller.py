"""The tray's decisions, tested with plain calls: no QApplication, no event loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpu_tray.app.config_loading import LoadedConfig
from gpu_tray.core.availability import ClusterSummary
from gpu_tray.core.models import GpuProcess, GpuSample, HostKeyInfo, HostSnapshot, HostState
from gpu_tray.core.settings import Config, HostConfig, NotifyConfig, WatchSpec
from gpu_tray.presenter.controller import TrayController

A100 = "NVIDIA A100-SXM4-80GB"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def node(name: str, *free: int, n: int = 2, source: str = "ssh") -> HostSnapshot:
    gpus = []
    for i in range(n):
        if i in free:
            gpus.append(GpuSample(i, f"GPU-{name}-{i}", A100, 81920, 3, 0))
        else:
            proc = (GpuProcess(100 + i, "python", 40000, "a.very-long-username"),)
            gpus.append(GpuSample(i, f"GPU-{name}-{i}", A100, 81920, 40960, 97, processes=proc))
    return HostSnapshot(name, HostState.OK, gpus=tuple(gpus), source=source)


def controller(*watch: WatchSpec, confirm: int = 2, **loaded) -> TrayController:
    config = Config(
        hosts=(HostConfig("node3"), HostConfig("node4")),
        watch=watch,
        notify=NotifyConfig(confirm_polls=confirm),
    )
    return TrayController(LoadedConfig(config, **loaded), clock=Clock())


def test_the_controller_module_imports_no_qt() -> None:
    code = (
        "import sys, gpu_tray.presenter.controller, gpu_tray.app.config_loading;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"


def test_state_counts_free_gpus_in_menu_order() -> None:
    c = controller()
    c.observe(node("node4", 0, 1))
    c.observe(node("node3", 1))
    state = c.state(paused=False, autostart=True)
    assert [s.name for s in state.snapshots] == ["node4", "node3"]
    assert state.summary == ClusterSummary(3, 4, 2, 0, 0, None, False)
    assert state.title == "gpu-tray"
    assert state.autostart is True
    assert state.watches_saved is False
    assert state.can_reload is False


def test_a_rule_fires_once_after_confirm_polls_and_rearms_after_it_was_false() -> None:
    c = controller(WatchSpec(host="node3", gpu=1))
    assert c.observe(node("node3")).firings == ()
    assert c.observe(node("node3", 1)).firings == ()  # 1 of 2 polls
    fired = c.observe(node("node3", 1)).firings
    assert [(f.host, [u.gpu_index for u in f.units]) for f in fired] == [("node3", [1])]
    assert c.observe(node("node3", 1)).firings == ()  # still free: no repeat
    c.observe(node("node3"))  # busy again: re-armed
    c.observe(node("node3", 1))
    assert len(c.observe(node("node3", 1)).firings) == 1


def test_notification_merges_a_poll_round_and_lists_its_actions() -> None:
    c = controller(WatchSpec(host="node3"), WatchSpec(host="node4"), confirm=1)
    firings = [*c.observe(node("node3", 0)).firings, *c.observe(node("node4", 1)).firings]
    note = c.notification(firings, history=True)
    assert note.summary == "2 GPUs free on 2 hosts"
    assert note.body == "node3: GPU 0 (A100 80GB) is free, 79 GiB\nnode4: GPU 1 (A100 80GB) is free, 79 GiB"
    assert note.actions == (
        ("default", "Copy command"),
        ("copy", "Copy command"),
        ("history", "Open history"),
        ("snooze", "Snooze 1 h"),
    )
    assert note.payload == tuple(firings)
    without = c.notification(firings, history=False)
    assert [key for key, _ in without.actions] == ["default", "copy", "snooze"]


def test_an_unknown_host_key_is_offered_for_review_once_per_fingerprint() -> None:
    c = controller()

    def untrusted(fp: str) -> HostSnapshot:
        key = HostKeyInfo("node3", "ssh-ed25519", fp, "AAAA")
        return HostSnapshot("node3", HostState.HOST_KEY_UNKNOWN, "unknown key", host_key=key)

    assert c.observe(untrusted("SHA256:one")).review_key is not None
    assert c.observe(untrusted("SHA256:one")).review_key is None
    assert c.observe(untrusted("SHA256:two")).review_key.host_key.fingerprint == "SHA256:two"


def test_a_slurm_view_joins_its_ssh_twin_and_is_not_observed_twice() -> None:
    c = controller(WatchSpec(host="node3"), confirm=2)
    slurm = HostSnapshot("node3.cluster", HostState.OK, source="slurm", node_state="idle")
    assert c.observe(node("node3", 0)).firings == ()  # poll 1 of 2
    seen = c.observe(slurm)
    assert seen == type(seen)(None)  # folded into node3: not a poll of its own
    assert list(c.latest) == ["node3"]
    assert (c.latest["node3"].source, c.latest["node3"].node_state) == ("ssh+slurm", "idle")
    again = c.observe(node("node3", 0))  # poll 2 of 2
    assert (again.shown.source, len(again.firings)) == ("ssh+slurm", 1)


def test_gone_forgets_a_host_and_reset_forgets_everything() -> None:
    c = controller()
    c.observe(node("node3", 0))
    c.observe(node("node4", 0))
    c.gone("ssh", "node4")
    assert list(c.latest) == ["node3"]
    c.set_note("keyring", "No system keyring found")
    c.problem = "Could not save the watch: disk full"
    assert c.state(paused=True, autostart=None).notes == (
        "No system keyring found",
        "Could not save the watch: disk full",
    )
    assert c.state(paused=True, autostart=None).can_reload is True
    demo = LoadedConfig(Config(demo=True), ("Demo cluster (simulated GPUs)",))
    c.reset(demo, "Cannot start polling: boom")
    assert c.latest == {}
    state = c.state(paused=False, autostart=None)
    assert state.title == "gpu-tray (demo)"
    assert state.notes == (
        "Demo cluster (simulated GPUs)",
        "Cannot start polling: boom",
        "No system keyring found",
    )


def test_watches_saved_takes_rules_and_confirm_polls_from_the_file() -> None:
    c = controller()
    c.problem = "Could not save the watch: disk full"
    saved = Config(watch=(WatchSpec(model="A100"),), notify=NotifyConfig(confirm_polls=5))
    c.watches_saved(saved)
    assert c.engine.specs == [WatchSpec(model="A100")]
    assert c.engine.confirm_polls == 5
    assert c.problem is None
    assert c.snooze([WatchSpec(model="A100").key], 60) == 1
    assert c.engine.snoozed_until(WatchSpec(model="A100").key) == 1_000_060.0
