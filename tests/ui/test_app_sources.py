"""Hosts from several sources side by side: a Slurm node joined with its SSH twin, a
source's stand-in dropped once real hosts report, and a host key waiting for the user."""

from __future__ import annotations

from dataclasses import replace

from gpu_tray.core.join import ALLOCATED_BUT_IDLE
from gpu_tray.core.models import GpuSample, HostKeyInfo, HostSnapshot, HostState
from tests.ui.app_harness import open_menu, open_submenu, settle

A100 = "NVIDIA A100-SXM4-80GB"

CONFIG = """poll_interval_s = 1

[notify]
confirm_polls = 1

[[hosts]]
name = "gpu01"
"""


def ssh_view(used: int = 3) -> HostSnapshot:
    return HostSnapshot(
        "gpu01", HostState.OK, gpus=(GpuSample(0, "GPU-0", A100, 81920, used, 0),), source="ssh"
    )


def slurm_view(allocated: bool) -> HostSnapshot:
    gpu = GpuSample(0, "", "a100", allocated=allocated)
    return HostSnapshot(
        "gpu01.cluster.org", HostState.OK, gpus=(gpu,), source="slurm", node_state="mixed"
    )


def test_a_slurm_node_and_its_ssh_twin_are_one_host(make_app, qtbot) -> None:
    app, _ = make_app(CONFIG)
    app.snapshot_arrived.emit(ssh_view())
    app.snapshot_arrived.emit(slurm_view(allocated=True))
    qtbot.waitUntil(lambda: app.latest["gpu01"].source == "ssh+slurm")
    assert list(app.latest) == ["gpu01"]
    [gpu] = app.latest["gpu01"].gpus
    assert gpu.allocated is True
    assert app.state().summary.free == 0  # idle, but Slurm gave it to a job
    lines = [a.text() for a in open_submenu(app, "gpu01").actions()]
    assert lines[0] == "From SSH, allocations from Slurm (node mixed)"
    assert any(ALLOCATED_BUT_IDLE in line for line in lines)


def test_a_folded_slurm_poll_does_not_count_against_confirm_polls(make_app, qtbot) -> None:
    config = CONFIG.replace("confirm_polls = 1", "confirm_polls = 2")
    app, rec = make_app(config + '[[watch]]\nhost = "gpu01"\n')
    app.snapshot_arrived.emit(ssh_view())
    for _ in range(3):  # Slurm polls more often than SSH here: still one SSH poll seen
        app.snapshot_arrived.emit(slurm_view(allocated=False))
    settle(app)
    assert rec.sent == []
    app.snapshot_arrived.emit(ssh_view())  # the second real observation
    settle(app)
    assert len(rec.sent) == 1


def test_a_sources_stand_in_goes_when_hosts_report(make_app, qtbot) -> None:
    app, _ = make_app(CONFIG)
    stand_in = HostSnapshot(
        "prometheus:prom:9090", HostState.UNREACHABLE, "refused", source="prometheus"
    )
    app.snapshot_arrived.emit(stand_in)
    app.snapshot_arrived.emit(ssh_view())
    qtbot.waitUntil(lambda: len(app.latest) == 2)
    assert app.state().summary.hosts_failing == 1
    app._gone.emit(app._generation, "prometheus", "prometheus:prom:9090")
    qtbot.waitUntil(lambda: list(app.latest) == ["gpu01"])
    assert app.state().summary.hosts_failing == 0


KEY = HostKeyInfo("[10.0.0.3]:2222", "ssh-ed25519", "SHA256:abc", "AAAA")


def test_an_unknown_host_key_is_shown_once_and_can_be_reviewed(make_app, qtbot) -> None:
    app, _ = make_app(CONFIG)
    shown: list[str] = []
    app.set_host_key_handler(lambda snap: shown.append(snap.host_key.fingerprint))
    bad = HostSnapshot("gpu01", HostState.HOST_KEY_UNKNOWN, "Unknown host key", host_key=KEY)
    for _ in range(3):
        app.snapshot_arrived.emit(bad)
    qtbot.waitUntil(lambda: "gpu01" in app.latest)
    assert shown == ["SHA256:abc"]  # once per key, not once per poll
    [review] = [a for a in open_submenu(app, "gpu01").actions() if a.text() == "Review host key…"]
    review.trigger()
    assert shown == ["SHA256:abc", "SHA256:abc"]
    other = replace(bad, host_key=replace(KEY, fingerprint="SHA256:other"))
    app.snapshot_arrived.emit(other)
    qtbot.waitUntil(lambda: len(shown) == 3)


def test_notes_show_in_the_menu(make_app) -> None:
    app, _ = make_app(CONFIG)
    note = "No system keyring found: passwords will be kept for this session only"
    app.set_note("keyring", note)
    menu = [a.text() for a in open_menu(app).actions()]
    assert menu[1] == note
    app.set_note("keyring", None)
    assert note not in " ".join(a.text() for a in open_menu(app).actions())
