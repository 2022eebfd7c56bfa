#!/usr/bin/python3
"""A fake `nvidia-smi` that replays real captures. Installed as `nvidia-smi` on the
remote PATH of the test sshd (run as the test user, with the system Python, so it
imports nothing from the project).

What it answers comes from the JSON file named by $GPU_TRAY_FAKE_NVSMI, which a
test can rewrite between polls:

  {"gpus": [{"csv": "/abs/query-gpu_..._allfields_header.csv", "set": {"index": "1"}}],
   "apps": {"csv": "/abs/query-compute-apps_....csv", "set": {...}, "pids": [4242]},
   "list": "/abs/list-L_....txt", "q": "/abs/q-text_....txt",
   "error": {"text": "Failed to initialize NVML: ...", "exit": 18},
   "raw": "printed instead of the GPU rows", "sleep": 0, "legacy": false}

`--query-gpu=` and `--query-compute-apps=` select the requested columns by header
name from the all-fields captures; with `nounits` the units are stripped from the
values, as the real tool does.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time

_UNIT_IN_HEADER = re.compile(r"\s*\[[^\]]*\]$")
_UNIT_IN_VALUE = re.compile(r"^(-?[0-9.]+) (MiB|W|%|MHz|C)$")


def select_fields(
    text: str, fields: str, overrides: dict | None = None, nounits: bool = True
) -> list[str]:
    """Rows of a captured CSV (with header) restricted to `fields`, as nvidia-smi prints
    them with `--format=csv,noheader[,nounits]`."""
    rows = list(csv.reader(text.splitlines()))
    names = [_UNIT_IN_HEADER.sub("", h.strip()) for h in rows[0]]
    out = []
    for row in rows[1:]:
        by_name = dict(zip(names, (v.strip() for v in row), strict=False))
        by_name.update(overrides or {})
        values = []
        for f in fields.split(","):
            if f not in by_name:
                raise KeyError(f)
            v = by_name[f]
            m = _UNIT_IN_VALUE.match(v) if nounits else None
            values.append(m.group(1) if m else v)
        out.append(", ".join(values))
    return out


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def main(argv: list[str]) -> int:
    with open(os.environ["GPU_TRAY_FAKE_NVSMI"], encoding="utf-8") as f:
        scenario = json.load(f)
    time.sleep(float(scenario.get("sleep", 0)))
    if "error" in scenario:
        print(scenario["error"]["text"])
        return int(scenario["error"]["exit"])
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in argv)
    nounits = "nounits" in args.get("--format", "")
    if "--query-gpu" in args:
        fields = args["--query-gpu"]
        if scenario.get("legacy") and "mig.mode.current" in fields:
            print('Field "mig.mode.current" is not a valid field to query.')
            return 2
        if "raw" in scenario:
            sys.stdout.write(scenario["raw"])
            return 0
        for gpu in scenario.get("gpus", []):
            rows = select_fields(_read(gpu["csv"]), fields, gpu.get("set"), nounits)
            print("\n".join(rows))
        return 0
    if "--query-compute-apps" in args:
        apps = scenario.get("apps")
        if apps:
            text = _read(apps["csv"])
            rows = select_fields(text, args["--query-compute-apps"], apps.get("set"), nounits)
            pids = apps.get("pids")
            if pids is not None:
                rows = [
                    _with_pid(r, args["--query-compute-apps"], p)
                    for r, p in zip(rows, pids, strict=False)
                ]
            print("\n".join(rows))
        return 0
    if "-L" in args:
        sys.stdout.write(_read(scenario["list"]))
        return 0
    if "-q" in args:
        sys.stdout.write(_read(scenario["q"]))
        return 0
    print("fake nvidia-smi: unsupported arguments: " + " ".join(argv))
    return 2


def _with_pid(row: str, fields: str, pid: int) -> str:
    values = row.split(", ")
    values[fields.split(",").index("pid")] = str(pid)
    return ", ".join(values)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
