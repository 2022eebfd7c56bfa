"""`gpu-tray status` (table and --json) with idle holders, expected free times and
"usually free by", run as a user runs it, on a scripted cluster and a history file."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from gpu_tray.core.idle import iso_utc
from gpu_tray.core.models import GpuProcess
from gpu_tray.store import Recorder, open_store
from tests.harness.scripted import app_env, gpu, gpu_tray_argv, host, write_cluster
from tests.store.helpers import gpu as store_gpu
from tests.store.helpers import ok

WEEK = 7 * 86_400
ALICE = "alice.longname"


def _held(util: int):
    g = store_gpu(0, util=util, mem=9000)
    return replace(g, processes=(GpuProcess(4242, "python train.py", 9000, ALICE),))


def _scripted(util: int) -> dict:
    g = gpu(0, free=False, user=ALICE)
    g["utilization_pct"] = util
    return g


def _setup(tmp_path: Path) -> tuple[dict[str, str], int, int]:
    now = time.time()
    if 3600 - now % 3600 < 60:  # keep "the next full hour" the same for the whole test
        time.sleep(3600 - now % 3600 + 1)
        now = time.time()
    base = int(now) - int(now) % 60 - 45 * 60  # 45 min of history, one poll a minute
    db = tmp_path / "history.sqlite3"
    conn = open_store(db)
    rec = Recorder(conn, clock=lambda: now)
    snaps = []
    for m in range(45):
        ts = base + 60 * m
        snaps += [
            ok("idle-node", ts, _held(0)),
            ok("blip-node", ts, _held(60 if m == 5 else 1)),
            ok("busy-node", ts, _held(97)),
        ]
    rec.write(snaps)
    # busy-node had a free GPU in the coming hour in each of the past 3 weeks.
    hour = int(now) - int(now) % 3600 + 3600
    hid = conn.execute("SELECT id FROM hosts WHERE name = 'busy-node'").fetchone()[0]
    conn.executemany(
        "INSERT INTO host_15m VALUES (?, ?, 4, 2, 1, 2, 1)",
        [(hour - w * WEEK + 900, hid) for w in (1, 2, 3)],
    )
    conn.close()
    cluster = tmp_path / "cluster.json"
    slurmish = _scripted(97)
    slurmish["expected_free_at"] = "2026-11-23T14:35:00Z"
    write_cluster(
        cluster,
        [
            host("idle-node", [_scripted(0)]),
            host("blip-node", [_scripted(2)]),
            host("busy-node", [slurmish]),
        ],
    )
    env = app_env(
        GPU_TRAY_DEMO_SCRIPT=str(cluster),
        GPU_TRAY_HISTORY=str(db),
        TZ="UTC",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env, base, hour


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gpu_tray_argv("status", "--demo", *args),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_status_json_idle_since_expected_free_at_and_usually_free_by(tmp_path: Path) -> None:
    env, base, hour = _setup(tmp_path)
    out = _run(env, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    got = {
        h["name"]: (h["gpus"][0]["idle_since"], h["gpus"][0]["expected_free_at"])
        for h in doc["hosts"]
    }
    assert got == {
        "idle-node": (iso_utc(base), None),
        "blip-node": (iso_utc(base + 6 * 60), None),  # the blip at minute 5 restarts it
        "busy-node": (None, "2026-11-23T14:35:00Z"),
    }
    usual = {h["name"]: h["usually_free_by"] for h in doc["hosts"]}
    assert usual == {
        "idle-node": None,
        "blip-node": None,
        "busy-node": datetime.fromtimestamp(hour + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_status_table_shows_when(tmp_path: Path) -> None:
    env, base, hour = _setup(tmp_path)
    out = _run(env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "HOST", "GPU", "MODEL", "MEMORY", "UTIL", "TEMP", "USERS", "STATE", "WHEN"
    ]  # fmt: skip
    idle_for = (time.time() - base) // 60
    # Whole minutes since the stretch began: 45 or 46 depending on when the poll landed.
    assert lines[1].endswith(f"BUSY   idle {int(idle_for)} min") or lines[1].endswith(
        f"BUSY   idle {int(idle_for) - 1} min"
    ), lines[1]
    assert lines[1].startswith("idle-node")
    assert lines[2].startswith("blip-node")
    assert lines[2].endswith((f"idle {int(idle_for) - 6} min", f"idle {int(idle_for) - 7} min"))
    assert lines[3].startswith("busy-node") and lines[3].endswith("BUSY   frees ~14:35")
    by = datetime.fromtimestamp(hour + 3600, UTC).strftime("%a %H:%M")
    assert lines[-1] == f"busy-node: usually a GPU free by {by}"


def test_status_without_or_with_a_broken_history_says_null(tmp_path: Path) -> None:
    env, _base, _hour = _setup(tmp_path)
    for content in (None, b"garbage" * 500):
        db = tmp_path / "other.sqlite3"
        if content is None:
            db.unlink(missing_ok=True)
        else:
            db.write_bytes(content)
        out = _run({**env, "GPU_TRAY_HISTORY": str(db)}, "--json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert [h["gpus"][0]["idle_since"] for h in doc["hosts"]] == [None, None, None]
        assert [h["usually_free_by"] for h in doc["hosts"]] == [None, None, None]
        if content is not None:
            assert db.read_bytes() == content  # read-only: never moved aside or rewritten
