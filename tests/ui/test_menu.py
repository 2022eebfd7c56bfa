"""The tray menu for the demo cluster at a fixed moment, and the tooltip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PySide6.QtWidgets import QMenu

from gpu_tray.core.availability import summarize
from gpu_tray.core.rules import RuleEngine
from gpu_tray.core.settings import Config, WatchSpec
from gpu_tray.presenter.text import tooltip
from gpu_tray.presenter.tray_state import TrayState
from gpu_tray.sources.demo.cluster import DemoCluster
from gpu_tray.ui.tray.menu import TrayMenu

# Monday 14:32 UTC: demo-flaky is in one of its outages; 14:29 was its last good poll.
NOW = datetime(2026, 11, 23, 14, 32, tzinfo=UTC)
LAST_GOOD = datetime(2026, 11, 23, 14, 29, tzinfo=UTC)
CONFIG = Config(demo=True)


def demo_snapshots():
    cluster = DemoCluster()
    snaps = cluster.snapshots_at(NOW)
    assert snaps[-1].name == "demo-flaky" and not snaps[-1].ok
    snaps[-1] = cluster.snapshot("demo-flaky", LAST_GOOD).as_stale(snaps[-1])
    return tuple(snaps)


class Recorder:
    """Stands in for the app: records what the menu asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, *args))


def make_menu(rules=(), **state) -> tuple[TrayMenu, Recorder]:
    snaps = demo_snapshots()
    engine = RuleEngine(rules, CONFIG.thresholds_for, 2)
    st = TrayState(
        snaps,
        summarize(snaps, CONFIG.thresholds_for),
        CONFIG.thresholds_for,
        rules=tuple(engine.status()),
        title="gpu-tray (demo)",
        **state,
    )
    actions = Recorder()
    menu = TrayMenu(actions, lambda: st, clock=lambda: NOW)
    menu.menu.aboutToShow.emit()
    return menu, actions


def texts(menu: QMenu) -> list[str]:
    return [a.text() if not a.isSeparator() else "--" for a in menu.actions()]


def submenu(menu: QMenu, prefix: str) -> QMenu:
    [action] = [a for a in menu.actions() if a.menu() and a.text().startswith(prefix)]
    sub = action.menu()
    sub.aboutToShow.emit()
    return sub


def test_main_menu_lists_hosts_then_the_commands(qapp) -> None:
    menu, _ = make_menu(notes=("Demo cluster (simulated GPUs)",), autostart=False)
    assert texts(menu.menu) == [
        "gpu-tray (demo): 4 of 23 GPUs free on 5 hosts, 1 failing",
        "Demo cluster (simulated GPUs)",
        "--",
        "demo-a100 — 1/4 free",
        "demo-h100 — 2/11 free",
        "demo-l40s — 1/2 free",
        "demo-rtx4090 — 0/4 free · ⚠ /home 94% full",  # the demo's /home is full
        "demo-flaky — timeout, data 3 min old",
        "    No answer from demo-flaky within 10 s",  # a failing host shows its message
        "--",
        "Watch",
        "Refresh now",
        "Pause polling",
        "--",
        "History…",
        "Settings…",
        "Start at login",
        "--",
        "Quit",
    ]
    enabled = {a.text(): a.isEnabled() for a in menu.menu.actions()}
    assert enabled["History…"] is False and enabled["Settings…"] is False
    assert enabled["Start at login"] is True


def test_host_submenu_lists_gpus_with_users_and_watch_toggles(qapp) -> None:
    menu, _ = make_menu()
    assert texts(submenu(menu.menu, "demo-h100")) == [
        "From the demo cluster",  # where a host's data comes from (ssh, Prometheus, Slurm...)
        "Load 38.3 on 224 CPUs · RAM 41% of 2.0 TiB",
        "Disk / 38% of 1.8 TiB · /home 60% of 7.8 TiB · /scratch 70% of 29.3 TiB",
        "Click a GPU to be told when it is free",
        "GPU 0 · H100 80GB · 0.0/79.6 GiB · 0% · free",
        "GPU 1 · H100 80GB · 46.8/79.6 GiB · 90% · priya.raman",
        "GPU 2 · H100 80GB · 29.4/79.6 GiB · 70% · jdoe",
        "GPU 3 · H100 80GB · 58.8/79.6 GiB · 89% · jdoe",
        "GPU 4 · H100 80GB · 56.1/79.6 GiB · 93% · s.okonkwo-fitzgerald",
        "GPU 5 · H100 80GB · 50.3/79.6 GiB · 70% · jdoe",
        "GPU 6 · H100 80GB · 41.6/79.6 GiB · 65% · s.okonkwo-fitzgerald",
        "GPU 7 · H100 80GB · 24.0/79.6 GiB · MIG 1/4 free · mchen, lwang, a.very-long-username",
        "    MIG 0 · 3g.40gb · 18.5/39.5 GiB · mchen",
        "    MIG 1 · 2g.20gb · 0.0/19.6 GiB · free",
        "    MIG 2 · 1g.10gb · 2.7/9.8 GiB · lwang",
        "    MIG 3 · 1g.10gb · 2.8/9.8 GiB · a.very-long-username",
        "--",
        "Any free GPU on demo-h100",
        "Any 2 free GPUs on demo-h100",
        "Any 4 free GPUs on demo-h100",
        "Any 8 free GPUs on demo-h100",
    ]


def test_failing_host_submenu_says_why_and_shows_its_last_data(qapp) -> None:
    menu, _ = make_menu()
    assert texts(submenu(menu.menu, "demo-flaky")) == [
        "From the demo cluster",
        "timeout: No answer from demo-flaky within 10 s",
        "Last data 3 min old:",
        "Click a GPU to be told when it is free",
        "GPU 0 · RTX 2080 SUPER · 4.9/8.0 GiB · 81% · a.very-long-username",
        "GPU 1 · RTX 2080 SUPER · 3.8/8.0 GiB · 82% · mchen",
        "--",
        "Any free GPU on demo-flaky",
        "Any 2 free GPUs on demo-flaky",
    ]


def test_watch_submenu_offers_cluster_rules_and_lists_yours(qapp) -> None:
    rules = [
        WatchSpec(host="demo-a100", gpu=2),
        WatchSpec(count=2, model="A100", min_free_memory_mib=40000),
    ]
    menu, actions = make_menu(rules)
    watch = submenu(menu.menu, "Watch")
    assert texts(watch) == [
        "Any free GPU anywhere",
        "Any free A100 80GB",
        "Any free H100 80GB",
        "Any free L40S",
        "Any free RTX 2080 SUPER",
        "Any free RTX 4090",
        "--",
        "Your watches (click to remove)",
        "GPU 2 on demo-a100",
        "any 2 A100 GPUs with 40000 MiB free anywhere",
        "--",
        "Snooze notifications for 1 h",
    ]
    by_text = {a.text(): a for a in watch.actions()}
    by_text["Any free L40S"].trigger()
    by_text["GPU 2 on demo-a100"].trigger()
    by_text["Snooze notifications for 1 h"].trigger()
    assert actions.calls == [
        ("add_watch", WatchSpec(model="NVIDIA L40S")),
        ("remove_watch", WatchSpec(host="demo-a100", gpu=2).key),
        ("snooze_all", 3600),
    ]


def test_gpu_lines_are_checked_when_watched_and_toggle_the_rule(qapp) -> None:
    menu, actions = make_menu([WatchSpec(host="demo-a100", gpu=2)])
    sub = submenu(menu.menu, "demo-a100")
    gpus = [a for a in sub.actions() if a.text().startswith("GPU ")]
    assert [a.isChecked() for a in gpus] == [False, False, True, False]
    gpus[2].trigger()  # unchecks: remove
    gpus[0].trigger()  # checks: add
    assert actions.calls == [
        ("remove_watch", WatchSpec(host="demo-a100", gpu=2).key),
        ("add_watch", WatchSpec(host="demo-a100", gpu=0)),
    ]


def test_commands_reach_the_app(qapp) -> None:
    menu, actions = make_menu(autostart=False)
    by_name = {a.objectName(): a for a in menu.menu.actions() if a.objectName()}
    by_name["refresh"].trigger()
    by_name["pause"].trigger()
    by_name["autostart"].trigger()
    by_name["quit"].trigger()
    assert actions.calls == [
        ("refresh_now",),
        ("set_paused", True),
        ("set_autostart", True),
        ("quit",),
    ]


def test_history_and_settings_are_enabled_once_handlers_are_given(qapp) -> None:
    opened = []
    menu, _ = make_menu()
    menu.on_history = lambda: opened.append("history")
    menu.on_settings = lambda: opened.append("settings")
    menu.menu.aboutToShow.emit()  # rebuilt on every opening
    by_name = {a.objectName(): a for a in menu.menu.actions() if a.objectName()}
    assert by_name["history"].isEnabled() and by_name["settings"].isEnabled()
    by_name["history"].trigger()
    by_name["settings"].trigger()
    assert opened == ["history", "settings"]


def test_rebuilding_does_not_pile_up_submenus(qapp) -> None:
    menu, _ = make_menu()
    for _ in range(5):
        menu.menu.aboutToShow.emit()
    qapp.processEvents()  # deleteLater runs
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert len(menu.menu.findChildren(QMenu)) == 6  # 5 hosts + Watch


@pytest.mark.parametrize("paused", [False, True])
def test_tooltip_has_one_line_per_host(qapp, paused: bool) -> None:
    snaps = demo_snapshots()
    text = tooltip(
        snaps, summarize(snaps, CONFIG.thresholds_for, paused=paused), CONFIG.thresholds_for, NOW
    )
    expected = [
        "gpu-tray: 4 of 23 GPUs free on 5 hosts, 1 failing",
        "demo-a100: 1/4 free",
        "demo-h100: 2/11 free",
        "demo-l40s: 1/2 free",
        "demo-rtx4090: 0/4 free · ⚠ /home 94% full",
        "demo-flaky: timeout, data 3 min old",
    ]
    if paused:
        expected.append("Polling is paused")
    assert text.splitlines() == expected


def test_an_unchanged_menu_is_not_rebuilt_when_it_opens_again(qapp) -> None:
    # On an SNI host every rebuilt entry is a D-Bus signal to the panel.
    snaps = demo_snapshots()

    def state_of(snaps, **kw) -> TrayState:
        return TrayState(
            snaps, summarize(snaps, CONFIG.thresholds_for), CONFIG.thresholds_for, **kw
        )

    state = {"st": state_of(snaps)}
    menu = TrayMenu(Recorder(), lambda: state["st"], clock=lambda: NOW)
    menu.menu.aboutToShow.emit()
    first = list(menu.menu.actions())
    a100 = submenu(menu.menu, "demo-a100")
    filled = list(a100.actions())
    for _ in range(3):
        menu.menu.aboutToShow.emit()
        a100.aboutToShow.emit()
    assert (menu.rebuilds, menu.patches) == (1, 0)
    assert menu.menu.actions() == first and a100.actions() == filled
    # A new state that shows the same (a new poll, same numbers): nothing touched.
    state["st"] = state_of(snaps)
    menu.menu.aboutToShow.emit()
    assert (menu.rebuilds, menu.patches) == (1, 0)

    # Paused: the same entries, one of them checked now: changed in place.
    state["st"] = state_of(snaps, paused=True)
    menu.menu.aboutToShow.emit()
    menu.menu.aboutToShow.emit()
    assert (menu.rebuilds, menu.patches) == (1, 1)
    assert menu.menu.actions() == first
    assert next(a for a in menu.menu.actions() if a.objectName() == "pause").isChecked()

    # demo-a100 loses its free GPU: its line and the headline change in place.
    busy = snaps[0].gpus[0].__class__  # GpuSample
    a100_busy = [_busy(g, busy) for g in snaps[0].gpus]
    changed = (snaps[0].__class__(**{**_fields(snaps[0]), "gpus": tuple(a100_busy)}), *snaps[1:])
    state["st"] = state_of(changed, paused=True)
    before = texts(menu.menu)
    menu.menu.aboutToShow.emit()
    assert (menu.rebuilds, menu.patches) == (1, 2)
    assert menu.menu.actions() == first
    after = texts(menu.menu)
    assert [(b, a) for b, a in zip(before, after, strict=True) if b != a] == [
        (
            "gpu-tray: 4 of 23 GPUs free on 5 hosts, 1 failing",
            "gpu-tray: 3 of 23 GPUs free on 5 hosts, 1 failing",
        ),
        ("demo-a100 — 1/4 free", "demo-a100 — 0/4 free"),
    ]
    # A host less: other entries, so the menu is rebuilt whole.
    state["st"] = state_of(changed[1:], paused=True)
    menu.menu.aboutToShow.emit()
    assert (menu.rebuilds, menu.patches) == (2, 2)
    assert not any(t.startswith("demo-a100") for t in texts(menu.menu))


def _fields(obj) -> dict:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}


def _busy(gpu, cls):
    from gpu_tray.core.models import GpuProcess

    proc = GpuProcess(pid=4242, user="someone", name="python", used_memory_mib=40000)
    return cls(**{**_fields(gpu), "processes": (proc,), "memory_used_mib": 40000})
