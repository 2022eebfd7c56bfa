"""kill -9 of a writing process, again and again: nothing committed is lost, nothing breaks."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gpu_tray.store import Recorder, open_store

from .helpers import T0, brute_host_aggregates, brute_unit_aggregates, table
from .writer_child import snapshot

ROOT = Path(__file__).resolve().parents[2]
KILLS = 50


def _run_and_kill(db: Path, first: int, rng: random.Random) -> list[tuple[int, int]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.writer_child", str(db), str(first)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    got_one = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            got_one.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if rng.random() < 0.2:
        # Sometimes while it opens, creates or checks the database.
        threading.Event().wait(rng.uniform(0.0, 0.3))
    else:
        assert got_one.wait(timeout=60), "the writer never committed"
        threading.Event().wait(rng.uniform(0.0, 0.15))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "committed":  # the last line may be cut short
            out.append((int(parts[1]), int(parts[2])))
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_minus_9_while_writing_loses_no_commit(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    rng = random.Random(4)
    committed: list[int] = []
    first = 0
    kills_after_commits = 0
    for _ in range(KILLS):
        spans = _run_and_kill(db, first, rng)
        kills_after_commits += bool(spans)
        for lo, hi in spans:
            committed.extend(range(lo, hi + 1))
        first = max([first, *committed]) + 1000
    assert kills_after_commits >= KILLS // 2
    assert len(committed) > 500

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = {
        (ts - T0, g): (util, mem, temp)
        for ts, g, util, mem, temp in conn.execute(
            "SELECT s.ts, u.gpu_index, s.util, s.mem, s.temp FROM samples s JOIN units u ON u.id = s.unit_id"
        )
    }
    for seq in committed:
        for g in snapshot(seq).gpus:
            assert rows[(seq, g.index)] == (g.utilization_pct, g.memory_used_mib, g.temperature_c)
    conn.close()

    # Every rollup that was committed is complete and right: a kill mid-rollup left no half.
    conn = open_store(db)
    Recorder(conn).maintain()
    raw = conn.execute("SELECT * FROM samples").fetchall()
    hosts = conn.execute("SELECT * FROM host_samples").fetchall()
    done = dict(conn.execute("SELECT tier, done_until FROM rollup_state"))
    for step, tier, unit_table, host_table in (
        (60, "1m", "samples_1m", "host_1m"),
        (900, "15m", "samples_15m", "host_15m"),
    ):
        want = {k: v for k, v in brute_unit_aggregates(raw, step).items() if k[0] < done[tier]}
        assert table(conn, unit_table) == want
        want = {k: v for k, v in brute_host_aggregates(hosts, step).items() if k[0] < done[tier]}
        assert table(conn, host_table) == want
