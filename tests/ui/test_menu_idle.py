"""Idle holders, people and expected free times in the tray: the controller (Qt-free)
turns replayed polls into TrayState, and the menu shows them with exact words."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtWidgets import QMenu

from gpu_tray.core.idle import iso_utc
from gpu_tray.core.models import GpuProcess, HostSnapshot, HostState
from gpu_tray.core.people import Person
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.presenter.controller import TrayController
from gpu_tray.ui.tray.menu import TrayMenu
from tests.idle.traces import HOST, T0, gpu


@dataclass(frozen=True)
class Loaded:
    config: Config
    notes: tuple[str, ...] = ()
    watches_path: Path | None = None
    error: bool = False


def polls(minutes: int) -> list[HostSnapshot]:
    """gpu-node1: GPU 0 idle (alice, 0 %), GPU 1 busy (bob, 97 %), GPU 2 free; and
    slurm-node: 4 GPUs held by carol until 14:35, polled every minute."""
    out = []
    for m in range(minutes):
        at = T0 + timedelta(minutes=m)
        out.append(
            HostSnapshot(
                HOST,
                HostState.OK,
                polled_at=at,
                gpus=(
                    gpu(0, 0, ((4242, "alice.longname"),)),
                    gpu(1, 97, ((5151, "bob"),)),
                    gpu(2, 0, ()),
                ),
                data_at=at,
            )
        )
        held = tuple(
            replace(
                gpu(i, 99, ((None, "carol"),)),
                processes=(GpuProcess(None, "job 77 train", user="carol"),),
                allocated=True,
                expected_free_at=datetime(2026, 11, 23, 14, 34, 30, tzinfo=UTC),
            )
            for i in range(4)
        )
        out.append(
            HostSnapshot(
                "slurm-node", HostState.OK, polled_at=at, gpus=held, source="slurm", data_at=at
            )
        )
    return out


def run_controller(minutes: int, config: Config | None = None) -> tuple[TrayController, list]:
    config = config or Config()
    now = {"t": T0.timestamp()}
    c = TrayController(Loaded(config), clock=lambda: now["t"])
    fired = []
    for s in polls(minutes):
        now["t"] = s.polled_at.timestamp()
        fired += list(c.observe(s).firings)
    return c, fired


def test_controller_state_has_idle_since_people_and_firings() -> None:
    config = Config(watch=(WatchSpec(event="idle_holder"),))
    c, fired = run_controller(131, config)
    st = c.state(paused=False, autostart=None)
    assert {k: iso_utc(v) for k, v in st.idle_since.items()} == {
        (HOST, 0, None): "2026-11-23T09:00:00Z"
    }
    assert [(f.event, f.host, f.text) for f in fired] == [
        (
            "idle_holder",
            HOST,
            ("gpu-node1: GPU 0 held by alice.longname, idle 30 min (at most 5%)",),
        )
    ]
    # With no history read yet, GPU-hours are 0; the GPUs held now are counted.
    assert st.people == (
        Person("carol", 4, 0, None, 0.0, 0.0),
        Person("alice.longname", 1, 1, T0.timestamp(), 0.0, 0.0),
        Person("bob", 1, 0, None, 0.0, 0.0),
    )


def test_a_snoozed_idle_holder_rule_stays_quiet() -> None:
    spec = WatchSpec(event="idle_holder")
    now = {"t": T0.timestamp()}
    c = TrayController(Loaded(Config(watch=(spec,))), clock=lambda: now["t"])
    c.snooze([spec.key], 3 * 3600)
    fired = []
    for s in polls(131):
        now["t"] = s.polled_at.timestamp()
        fired += list(c.observe(s).firings)
    assert fired == []


def test_history_seeds_idle_stretches_and_gpu_hours() -> None:
    from gpu_tray.core.idle import unit_samples
    from tests.idle.traces import snapshots

    c, _ = run_controller(5)  # the app started at 09:00 ... 09:04
    # History: alice's GPU was idle from 08:20 to 08:59 (the polls before the app started).
    earlier = snapshots([(m, 0, ((4242, "alice.longname"),)) for m in range(0, 40)])
    earlier = [replace(s, polled_at=s.polled_at - timedelta(minutes=40)) for s in earlier]
    c.seed_history(
        {(HOST, 0, None): [unit_samples(s)[(HOST, 0, None)] for s in earlier]},
        {"alice.longname": 1.5, "": 0.25},
        {"alice.longname": 20.0, "dave": 3.0},
        {},
    )
    st = c.state(paused=False, autostart=None)
    assert {k: iso_utc(v) for k, v in st.idle_since.items()} == {
        (HOST, 0, None): "2026-11-23T08:20:00Z"
    }
    assert [p.user for p in st.people] == [
        "carol",
        "alice.longname",
        "bob",
        "dave",
        "(owner not visible)",
    ]
    since = (T0 - timedelta(minutes=40)).timestamp()
    assert st.people[1] == Person("alice.longname", 1, 1, since, 1.5, 20.0)
    assert st.people[4] == Person("(owner not visible)", 0, 0, None, 0.25, 0.0)


def texts(menu: QMenu) -> list[str]:
    return [a.text() if not a.isSeparator() else "--" for a in menu.actions()]


def submenu(menu: QMenu, prefix: str) -> QMenu:
    [action] = [a for a in menu.actions() if a.menu() and a.text().startswith(prefix)]
    sub = action.menu()
    sub.aboutToShow.emit()
    return sub


def make_menu(qapp, minutes: int, usual: dict | None = None) -> TrayMenu:
    c, _ = run_controller(minutes)
    c.seed_history({}, {"alice.longname": 2.0}, {"alice.longname": 30.5, "bob": 1.0}, usual or {})
    st = c.state(paused=False, autostart=None)
    now = T0 + timedelta(minutes=minutes - 1)
    menu = TrayMenu(_Actions(), lambda: st, clock=lambda: now)
    menu.menu.aboutToShow.emit()
    return menu


class _Actions:
    def __getattr__(self, name: str):
        return lambda *args: None


def test_menu_shows_idle_holders_expected_free_times_and_people(qapp, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    menu = make_menu(qapp, 131)  # 09:00 .. 11:10
    top = texts(menu.menu)
    assert top[2:6] == [
        "gpu-node1 — 1/3 free",
        "slurm-node — 0/4 free, 4 GPUs at ~14:35",
        "--",
        "People — 3 holding GPUs",
    ]
    host = texts(submenu(menu.menu, "gpu-node1"))
    assert host[2:5] == [
        "GPU 0 · H100 80GB · 7.3/79.6 GiB · 0% · idle 2 h 10 min · alice.longname",
        "GPU 1 · H100 80GB · 7.3/79.6 GiB · 97% · bob",
        "GPU 2 · H100 80GB · 0.0/79.6 GiB · 0% · free",
    ]
    assert texts(submenu(menu.menu, "People")) == [
        "GPUs held now · GPU-hours over the last 24 h and 7 days",
        "carol · 4 GPUs · 24 h: 0.0 GPU-h · 7 d: 0.0",
        "alice.longname · 1 GPU, 1 idle 2 h 10 min · 24 h: 2.0 GPU-h · 7 d: 30.5",
        "bob · 1 GPU · 24 h: 0.0 GPU-h · 7 d: 1.0",
    ]


def test_menu_says_usually_free_by_only_when_no_gpu_is_free(qapp, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    by = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    menu = make_menu(qapp, 3, {HOST: by, "slurm-node": by})
    top = texts(menu.menu)
    # gpu-node1 has a free GPU: nothing to predict; slurm-node's end times win.
    assert top[2:4] == ["gpu-node1 — 1/3 free", "slurm-node — 0/4 free, 4 GPUs at ~14:35"]
    assert "idle" not in texts(submenu(menu.menu, "gpu-node1"))[2]  # 2 min: not yet idle
