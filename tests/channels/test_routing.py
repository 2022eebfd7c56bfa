"""Which firing goes where (Qt-free): the controller's rules and host events, routed by
each rule's `channels`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpu_tray.channels.message import Message
from gpu_tray.channels.routing import route
from gpu_tray.core.config import parse_config
from gpu_tray.core.models import GpuProcess, GpuSample, HostSnapshot, HostState
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.presenter.controller import TrayController

A100 = "NVIDIA A100-SXM4-80GB"


def node3(*free: int) -> HostSnapshot:
    gpus = []
    for i in range(4):
        if i in free:
            gpus.append(GpuSample(i, f"GPU-{i}", A100, 81920, 3, 0))
        else:
            proc = (GpuProcess(100 + i, "python", 40000, "a.very-long-username"),)
            gpus.append(GpuSample(i, f"GPU-{i}", A100, 81920, 40960, 97, processes=proc))
    return HostSnapshot("node3", HostState.OK, gpus=tuple(gpus))


CONFIG = """
[notify]
confirm_polls = 1

[[channels]]
name = "lab"

[[channels]]
name = "phone"

[[watch]]
host = "node3"
gpu = 1
channels = ["phone"]

[[watch]]
host = "node3"
gpu = 2
channels = ["desktop", "lab", "phone"]

[[watch]]
event = "host_down"
down_after_s = 10
channels = ["lab"]

[[watch]]
event = "host_down"
host = "node3"
down_after_s = 10
channels = ["lab", "desktop"]
"""


@dataclass(frozen=True)
class Loaded:
    config: Config
    notes: tuple[str, ...] = ()
    watches_path: Path | None = None
    error: bool = False


def controller(clock: list[float]) -> TrayController:
    return TrayController(Loaded(parse_config(CONFIG)), clock=lambda: clock[0])


def test_firings_go_to_the_desktop_only_when_listed_and_once_per_channel() -> None:
    c = controller([0.0])
    c.observe(node3())
    seen = c.observe(node3(1, 2))
    routed = c.route(seen.firings)
    assert [f.spec.gpu for f in routed.desktop_firings] == [2]
    assert routed.channels == (
        (
            "phone",
            Message(
                "2 GPUs free on node3",
                "node3: GPU 1 (A100 80GB) is free, 79 GiB\n"
                "node3: GPU 2 (A100 80GB) is free, 79 GiB",
            ),
        ),
        ("lab", Message("GPU free on node3", "node3: GPU 2 (A100 80GB) is free, 79 GiB")),
    )


def test_a_host_event_two_rules_send_to_one_channel_is_said_once() -> None:
    clock = [0.0]
    c = controller(clock)
    down = HostSnapshot("node3", HostState.TIMEOUT, "No answer from node3 within 10 s")
    assert c.observe(down).events == ()
    clock[0] = 10
    seen = c.observe(down)
    assert len(seen.events) == 2  # both rules hold
    routed = c.route((), seen.events)
    assert [(e.host, e.kind) for e in routed.desktop_events] == [("node3", "down")]
    assert routed.channels == (
        (
            "lab",
            Message(
                "node3 is down",
                "node3 has not answered for 10 s: No answer from node3 within 10 s",
            ),
        ),
    )
    note = c.event_notification(routed.desktop_events[0])
    assert (note.summary, note.actions) == ("node3 is down", ())


def test_toggling_gpu_rules_keeps_the_host_event_rules() -> None:
    c = controller([0.0])
    c.apply_watches([*c.config.watch, WatchSpec(host="node3")])
    assert len(c.events.specs) == 2
    assert len(c.engine.specs) == 3
    assert route([], []).channels == ()


IDLE_CONFIG = """
[idle]
max_utilization_pct = 5
after_min = 30

[[channels]]
name = "admins"

[[watch]]
event = "idle_holder"
host = "node3"
channels = ["admins"]
"""


def test_an_idle_holder_rule_reaches_its_channel_once_per_stretch() -> None:
    from datetime import UTC, datetime, timedelta

    c = TrayController(Loaded(parse_config(IDLE_CONFIG)))
    t0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    held = (GpuProcess(4242, "python train.py", 30000, "s.okonkwo-fitzgerald"),)

    def poll(minute: int, util: int) -> HostSnapshot:
        gpu = GpuSample(0, "GPU-0", A100, 81920, 30000, util, processes=held)
        return HostSnapshot(
            "node3", HostState.OK, gpus=(gpu,), polled_at=t0 + timedelta(minutes=minute)
        )

    sent = []
    for minute in range(0, 61, 5):
        routed = c.route(c.observe(poll(minute, 0)).firings)
        assert routed.desktop_firings == ()  # the rule names only "admins"
        sent.extend(routed.channels)
    assert sent == [
        (
            "admins",
            Message(
                "GPU held idle on node3",
                "node3: GPU 0 held by s.okonkwo-fitzgerald, idle 30 min (at most 5%)",
            ),
        )
    ]
    c.observe(poll(65, 80))  # busy again: the stretch ends
    later = []
    for minute in range(70, 101, 5):
        later.extend(c.route(c.observe(poll(minute, 1)).firings).channels)
    assert [(name, m.title) for name, m in later] == [("admins", "GPU held idle on node3")]
