"""What the history window shows and saves: curve colours in a PNG, the heatmap, the CSV."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage

from gpu_tray.ui.history.colors import FREE_COLOUR, unit_colour
from gpu_tray.ui.history.heatmap import NO_DATA, NO_DATA_HATCH, fraction_colour
from gpu_tray.ui.history.plots import PLOT_HEIGHT
from tests.store.helpers import DAY, MON, T0, THU, seed_heatmap_store

from .history_fixtures import NOW_TS, demo_db, open_window


def _rgb(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    raw = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
    bgra = raw.reshape(h, img.bytesPerLine() // 4, 4)[:, :w]
    return bgra[:, :, 2::-1].astype(int)  # B, G, R -> R, G, B


def _pixels_like(rgb: np.ndarray, colour: str, tolerance: int = 24) -> int:
    c = QColor(colour)
    want = np.array([c.red(), c.green(), c.blue()])
    return int((np.abs(rgb - want).max(axis=2) <= tolerance).sum())


def _export(qtbot, w, fn, *args) -> Path:
    with qtbot.waitSignal(w.exported, timeout=30_000) as blocker:
        fn(*args)
    return Path(blocker.args[0])


def test_a_plot_png_has_pixels_of_every_curves_colour(qtbot, tmp_path: Path) -> None:
    w = open_window(qtbot, demo_db())
    for host, plot, colours in (
        ("demo-a100", "util", [unit_colour(i) for i in range(4)]),
        ("demo-a100", "temp", [unit_colour(i) for i in range(4)]),
        (
            "demo-h100",
            "mem",
            [unit_colour(i) for i in range(7)] + [unit_colour(7, m) for m in range(4)],
        ),
        ("demo-a100", "free", [FREE_COLOUR]),
    ):
        if not w.sections[host].built:
            w.sections[host].set_expanded(True)
            qtbot.waitUntil(lambda h=host: len(w.sections[h].units) > 4, timeout=30_000)
        path = _export(qtbot, w, w.export_plot_png, host, plot, tmp_path / f"{host}-{plot}.png")
        rgb = _rgb(QImage(str(path)))
        background = rgb[2, 2]
        assert (np.abs(rgb - background).max(axis=2) > 40).sum() > 2000, "an empty plot"
        for colour in colours:
            assert _pixels_like(rgb, colour) >= 30, f"{host} {plot}: no pixels in {colour}"
    # And one colour that is drawn nowhere is found nowhere: the check can fail.
    assert _pixels_like(rgb, "#ff00ff") == 0


def test_the_same_gpu_has_the_same_colour_everywhere(qtbot) -> None:
    w = open_window(qtbot, demo_db())
    section = w.sections["demo-a100"]
    for i in range(4):
        colours = {
            section.curves[(m, (i, -1))].opts["pen"].color().name() for m in ("util", "mem", "temp")
        }
        assert colours == {unit_colour(i)}
        assert unit_colour(i) in section.legend.text()


def test_the_heatmap_matches_the_hand_computed_case(qtbot, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    seed_heatmap_store(db)
    from gpu_tray.ui.history.window import HistoryWindow

    w = HistoryWindow(db, clock=lambda: T0 + 12 * DAY, initial_range="30d")
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.range_loaded, timeout=60_000):
        w.show()
    heat = w.sections["n"].heat
    assert heat is not None
    expected: list[list[float | None]] = [[None] * 24 for _ in range(7)]
    expected[THU][0] = 0.75
    expected[THU][1] = 0.0
    expected[MON][13] = 0.5
    assert [[heat.value(d, h) for h in range(24)] for d in range(7)] == expected
    image = heat.grab().toImage()
    for day in range(7):
        for hour in range(24):
            r = heat.cell_rect(day, hour).adjusted(1, 1, -2, -2)
            seen = {
                image.pixelColor(x, y).name()
                for x in range(r.left(), r.right() + 1)
                for y in range(r.top(), r.bottom() + 1)
            }
            if expected[day][hour] is None:  # grey, hatched
                assert seen == {NO_DATA.name(), NO_DATA_HATCH.name()}, (day, hour)
            else:
                assert seen == {fraction_colour(expected[day][hour]).name()}, (day, hour)
    assert heat.describe(THU, 0) == "Thu 00:00–01:00: at least one GPU free in 75% of 4 polls"
    assert heat.describe(MON, 13) == "Mon 13:00–14:00: at least one GPU free in 50% of 8 polls"
    assert heat.describe(THU, 2) == "Thu 02:00–03:00: no data"


def test_the_gpu_csv_is_what_the_store_holds(qtbot, tmp_path: Path) -> None:
    db = demo_db()
    w = open_window(qtbot, db, key="1h")
    path = _export(qtbot, w, w.export_csv, "demo-h100", tmp_path / "h100.csv")
    assert w.status.text() == f"Saved {sum(1 for _ in path.open()) - 1} rows to {path}"
    got = {
        (int(r["epoch_s"]), int(r["gpu"]), r["mig"]): (
            r["utilization_pct_mean"],
            r["memory_used_mib_max"],
            r["temperature_c_mean"],
        )
        for r in csv.DictReader(path.open())
    }
    conn = sqlite3.connect(db)
    want = {
        (ts, g, "" if m is None else str(m)): tuple(
            "" if v is None else str(v) for v in (u, mem, t)
        )
        for ts, g, m, u, mem, t in conn.execute(
            "SELECT s.ts, u.gpu_index, u.mig_index, s.util, s.mem, s.temp FROM samples s "
            "JOIN units u ON u.id = s.unit_id JOIN hosts h ON h.id = u.host_id "
            "WHERE h.name = 'demo-h100' AND s.ts >= ? AND s.ts <= ?",
            (int(NOW_TS) - 3600, int(NOW_TS)),
        )
    }
    assert len(want) == 60 * 12
    assert got == want


def test_the_free_csv_of_the_cluster_has_every_host_and_the_total(qtbot, tmp_path: Path) -> None:
    w = open_window(qtbot, demo_db(), key="6h")
    path = _export(qtbot, w, w.export_csv, None, tmp_path / "free.csv", "free")
    rows = list(csv.DictReader(path.open()))
    hosts = {r["host"] for r in rows}
    assert hosts == {*w.sections, "(all hosts)"}
    by_time: dict[str, dict[str, float]] = {}
    for r in rows:
        by_time.setdefault(r["epoch_s"], {})[r["host"]] = float(r["free_mean"])
    # Where every host has a point, the cluster is their sum.
    full = [v for v in by_time.values() if len(v) == len(w.sections) + 1]
    assert len(full) > 100
    for v in full:
        total = v.pop("(all hosts)")
        assert abs(total - sum(v.values())) < 1e-6


def test_a_section_png_is_the_whole_section(qtbot, tmp_path: Path) -> None:
    w = open_window(qtbot, demo_db())
    path = _export(qtbot, w, w.export_section_png, "demo-a100", tmp_path / "a100.png")
    image = QImage(str(path))
    section = w.sections["demo-a100"]
    assert image.width() >= section.minimumSizeHint().width()
    assert image.height() >= 2 * PLOT_HEIGHT
    rgb = _rgb(image)
    for colour in [unit_colour(i) for i in range(4)] + [FREE_COLOUR]:
        assert _pixels_like(rgb, colour) >= 30  # the legend and all four plots
    assert _pixels_like(rgb, fraction_colour(1.0).name(), 2) >= 100  # the heatmap
