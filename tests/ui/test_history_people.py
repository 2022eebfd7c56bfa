"""The history window's People tab and the held-idle shading, on a store written from
replayed traces (offscreen)."""

from __future__ import annotations

from pathlib import Path

from gpu_tray.core.settings import IdleSettings
from gpu_tray.store import Recorder, open_store
from gpu_tray.ui.history.people_tab import COLUMNS, row_texts
from gpu_tray.ui.history.window import HistoryWindow
from tests.idle.traces import BLIP, BUSY, IDLE, snapshots


def _store(tmp_path: Path) -> tuple[Path, float]:
    snaps = snapshots(IDLE) + snapshots(BLIP, host="gpu-node2") + snapshots(BUSY, host="gpu-node3")
    end = max(s.polled_at.timestamp() for s in snaps)
    db = tmp_path / "history.sqlite3"
    conn = open_store(db)
    Recorder(conn, clock=lambda: end).write(snaps)
    conn.close()
    return db, end


def test_people_tab_and_idle_shading(qtbot, tmp_path: Path, monkeypatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    db, end = _store(tmp_path)
    w = HistoryWindow(db, clock=lambda: end, initial_range="6h", idle=IdleSettings())
    qtbot.addWidget(w)
    with qtbot.waitSignals([w.range_loaded, w.people_loaded], timeout=60_000):
        w.show()
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["GPUs", "People"]
    assert w.people_view is not None
    table = w.people_tab.table
    assert [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())] == list(
        COLUMNS
    )
    cells = [
        tuple(table.item(r, c).text() for c in range(table.columnCount()))
        for r in range(table.rowCount())
    ]
    # alice holds a GPU on all three hosts at their newest polls: gpu-node1 (idle since
    # 09:00), gpu-node2 (idle since 09:21, after the blip), gpu-node3 (busy).
    # GPU-hours: 45 + 60 + 60 polls after the first, a minute each = 2.75 h.
    assert cells == [("alice.longname", "3", "2", "Mon 09:00 (1 h)", "2.8", "2.8")]
    assert cells == row_texts(w.people_view)
    # Shading: one stretch per idle GPU, on its host's utilisation plot.
    t0 = snapshots(IDLE)[0].polled_at.timestamp()
    w.tabs.setCurrentIndex(0)
    first = w.sections["gpu-node1"]
    qtbot.waitUntil(lambda: first.built, timeout=30_000)
    assert [(k, s, e) for k, s, e in first.idle] == [((0, -1), t0, t0 + 45 * 60)]
    assert [r.getRegion() for r in first._idle_items] == [(t0, t0 + 45 * 60)]
    second = w.sections["gpu-node2"]
    assert second.idle == [((0, -1), t0 + 21 * 60, t0 + 60 * 60)]
    second.set_expanded(True)  # built after the stretches arrived: drawn when built
    qtbot.waitUntil(lambda: second.built, timeout=30_000)
    assert [r.getRegion() for r in second._idle_items] == [(t0 + 21 * 60, t0 + 60 * 60)]
    assert w.sections["gpu-node3"].idle == []
    w.tabs.setCurrentIndex(1)
    image = w.grab().toImage()
    assert not image.isNull()
    shots = Path(__file__).resolve().parents[1] / "artifacts"
    shots.mkdir(exist_ok=True)
    image.save(str(shots / "history-people-tab.png"))
