"""Build the poll script's output from the real nvidia-smi captures.

The all-fields CSVs carry a header with units (` memory.total [MiB]`) and
values with units (` 81559 MiB`). With `nounits`, nvidia-smi strips the
unit from the values; we do the same when selecting columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpu_tray.sources.ssh.nvsmi import APP_FIELDS, GPU_FIELDS, MARK
from tests.harness.fake_nvidia_smi import select_fields

NVSMI = Path(__file__).parent / "fixtures" / "nvidia-smi"


def select(csv_path: Path, fields: str) -> list[str]:
    """Rows of `csv_path` restricted to `fields`, as `--format=csv,noheader,nounits` prints them."""
    return select_fields(csv_path.read_text(), fields)


@dataclass(frozen=True)
class Capture:
    gpu_csv: str
    apps_csv: str | None = None
    list_l: str | None = None
    q_text: str | None = None


CAPTURES = {
    "h100-idle": Capture("query-gpu_H100-80GB-HBM3_linux_drv590.48.01_idle_allfields_header.csv"),
    "h100-load": Capture(
        "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv",
        "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv",
    ),
    "h100-mig-idle": Capture(
        "query-gpu_H100-80GB-HBM3-MIG_linux_drv590.48.01_idle_allfields_header.csv",
        None,
        "list-L_H100-80GB-HBM3-MIG_linux_drv590.48.01.txt",
        "q-text_H100-80GB-HBM3-MIG_linux_drv590.48.01_idle.txt",
    ),
    "l40s-load": Capture(
        "query-gpu_L40S_linux_drv595.80_load_allfields_header.csv",
        "query-compute-apps_L40S_linux_drv595.80_load.csv",
    ),
    "rtx2080-610-load": Capture(
        "query-gpu_RTX-2080-SUPER_linux_drv610.57.04_load_allfields_header.csv",
        "query-compute-apps_RTX-2080-SUPER_linux_drv610.57.04_load.csv",
    ),
    "rtx2080-windows-load": Capture(
        "query-gpu_RTX-2080-SUPER_windows_drv591.86_load_allfields_header.csv",
        "query-compute-apps_RTX-2080-SUPER_windows_drv591.86_load.csv",
    ),
    "rtx4080-idle": Capture(
        "query-gpu_RTX-4080-SUPER_linux_drv595.71.05_idle_allfields_header.csv",
        "query-compute-apps_RTX-4080-SUPER_linux_drv595.71.05_idle.csv",
    ),
}


def poll_output(
    name: str,
    owners: dict[int, str] | None = None,
    q_text: str | None = None,
    apps_lines: list[str] | None = None,
) -> bytes:
    """What POLL_COMMAND prints on a host whose nvidia-smi gives capture `name`."""
    cap = CAPTURES[name]
    gpu_rows = select(NVSMI / cap.gpu_csv, GPU_FIELDS)
    apps = apps_lines
    if apps is None:
        apps = select(NVSMI / cap.apps_csv, APP_FIELDS) if cap.apps_csv else []
    parts = [f"{MARK}gpus rc=0 fields={GPU_FIELDS}", *gpu_rows, f"{MARK}apps rc=0", *apps]
    parts.append(f"{MARK}owners")
    parts += [f"{pid:>7} {user}" for pid, user in (owners or {}).items()]
    if any(row.endswith("Enabled") for row in gpu_rows):
        parts.append(f"{MARK}mig-list")
        parts += (NVSMI / cap.list_l).read_text().splitlines() if cap.list_l else []
        parts.append(f"{MARK}mig-query")
        q = q_text if q_text is not None else (NVSMI / cap.q_text).read_text()
        parts += q.splitlines()
    parts.append(f"{MARK}end")
    return ("\n".join(parts)).encode()


def error_output(message: str, exit_code: int) -> bytes:
    return f"{MARK}gpus rc={exit_code} fields={GPU_FIELDS}\n{message}\n{MARK}end\n".encode()
