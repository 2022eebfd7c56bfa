"""The heatmap against a hand-computed case, and the CSV export against the tables."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_tray.core.na import NA
from gpu_tray.store import HistoryReader, Recorder, open_store

from .helpers import DAY, HOUR, MON, T0, THU, gpu, ok, seed_heatmap_store


@pytest.fixture
def kolkata() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    os.environ["TZ"] = old or "UTC"
    time.tzset()


def test_heatmap_matches_the_hand_computed_case(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    seed_heatmap_store(db)
    heat = HistoryReader(db).heatmap("n", T0, T0 + 30 * DAY)
    expected: list[list[float | None]] = [[None] * 24 for _ in range(7)]
    expected[THU][0] = 0.75
    expected[THU][1] = 0.0
    expected[MON][13] = 0.5
    # 20:00 on the second Monday is only rolled up when something later arrives.
    assert heat.fraction == expected
    assert heat.polls[THU][0] == 4 and heat.polls[MON][13] == 8


def test_heatmap_uses_local_time(tmp_path: Path, kolkata: None) -> None:
    db = tmp_path / "h.sqlite3"
    seed_heatmap_store(db)
    heat = HistoryReader(db).heatmap("n", T0, T0 + 30 * DAY)
    # UTC+5:30: Thursday 00:00-01:00 UTC is 05:30-06:30 local.
    assert heat.fraction[THU][5] == 1.0  # the polls at 00:01 and 00:16 UTC
    assert heat.fraction[THU][6] == pytest.approx(1 / 3)  # 00:33 busy, 00:50 free, 01:01 busy
    assert heat.fraction[THU][7] == 0.0  # 01:33 busy
    assert heat.fraction[MON][18] == 0.5  # 13:00-14:00 UTC = 18:30-19:30 local
    assert heat.fraction[MON][19] == 0.5


def test_heatmap_of_an_unknown_host_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    seed_heatmap_store(db)
    heat = HistoryReader(db).heatmap("nobody", T0, T0 + 30 * DAY)
    assert all(v is None for row in heat.fraction for v in row)


def test_unit_csv_is_what_the_raw_table_holds(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = Recorder(open_store(db), clock=lambda: T0 + DAY)
    rec.write(
        [
            ok(
                "b-node",
                T0 + 10 * k,
                gpu(0, util=k, mem=100 * k, temp=40),
                gpu(1, util=NA, mem=7, temp=NA),
            )
            for k in range(30)
        ]
        + [ok("a-node", T0 + 10 * k + 3, gpu(0, util=2 * k, mem=1, temp=31)) for k in range(30)]
    )
    out = io.StringIO()
    n = HistoryReader(db).export_units_csv(out, T0, T0 + HOUR)
    assert n == 90
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    got = {
        (r["host"], int(r["gpu"]), int(r["epoch_s"])): (
            r["utilization_pct_mean"],
            r["memory_used_mib_mean"],
            r["temperature_c_max"],
        )
        for r in rows
    }
    want = {
        (host, g, ts): tuple("" if v is None else str(v) for v in (util, mem, temp))
        for host, g, ts, util, mem, temp in rec.conn.execute(
            "SELECT h.name, u.gpu_index, s.ts, s.util, s.mem, s.temp FROM samples s "
            "JOIN units u ON u.id = s.unit_id JOIN hosts h ON h.id = u.host_id"
        )
    }
    assert got == want
    assert rows[0]["time_utc"].endswith("Z") and rows[0]["host"] == "a-node"
    assert list(rows[0]) == [
        "epoch_s",
        "time_utc",
        "host",
        "gpu",
        "mig",
        "utilization_pct_mean",
        "utilization_pct_max",
        "memory_used_mib_mean",
        "memory_used_mib_max",
        "temperature_c_mean",
        "temperature_c_max",
    ]


def test_free_csv_has_hosts_and_the_cluster(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    rec = Recorder(open_store(db), clock=lambda: T0 + DAY)
    rec.write([ok("a", T0, gpu(0), gpu(1, busy=True)), ok("b", T0 + 5, gpu(0))])
    out = io.StringIO()
    HistoryReader(db).export_free_csv(out, T0, T0 + HOUR, cluster=True)
    lines = out.getvalue().splitlines()
    assert lines[:5] == [
        "epoch_s,time_utc,host,free_mean,free_max,total",
        f"{T0},2026-05-28T00:00:00Z,a,1,1,2",
        f"{T0 + 5},2026-05-28T00:00:05Z,b,1,1,1",
        f"{T0},2026-05-28T00:00:00Z,(all hosts),1,1,2",
        f"{T0 + 5},2026-05-28T00:00:05Z,(all hosts),2,2,3",
    ]
