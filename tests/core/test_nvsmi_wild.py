"""nvidia-smi as machines in the wild print it (issue 11), each case built from its
published behaviour: faulty GPUs, unified memory, hidden PIDs, WSL2, commas in
process names, PCI domains, containers' PIDs and UIDs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpu_tray.core.availability import host_units, summarize
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.report import status_document, status_table
from gpu_tray.core.settings import Config, FreeThresholds
from gpu_tray.presenter.text import gpu_line, host_status, summary_line
from gpu_tray.sources.ssh.nvsmi import GPU_FIELDS, MARK, parse_poll_output, pci_key
from tests.captures import poll_output

LIMITS = FreeThresholds()
A100 = "NVIDIA A100-SXM4-80GB"


def poll(
    rows: list[str],
    apps: list[str] = (),  # type: ignore[assignment]
    owners: list[str] = (),  # type: ignore[assignment]
    tail: list[str] = (),  # type: ignore[assignment]
) -> bytes:
    """What the poll script prints, around the rows given."""
    return "\n".join(
        [
            f"{MARK}gpus rc=0 fields={GPU_FIELDS}",
            *rows,
            f"{MARK}apps rc=0",
            *apps,
            f"{MARK}owners",
            *owners,
            *tail,
            f"{MARK}end",
        ]
    ).encode()


def row(index: int, mem: str = "0", util: str = "0", uuid: str = "", name: str = A100) -> str:
    uuid = uuid or f"GPU-{index}"
    return (
        f"{index}, {uuid}, {name}, 81920, {mem}, {util}, 30, 60.5, 00000000:0{index}:00.0, Disabled"
    )


def snap_of(out: bytes, name: str = "node") -> HostSnapshot:
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.OK, None)
    return HostSnapshot(name, HostState.OK, gpus=result.gpus)


def free_of(snap: HostSnapshot) -> list[bool]:
    return [u.free for u in host_units(snap, LIMITS)]


# -- faulty GPUs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "token"),
    [
        ("[GPU requires reset]", "GPU requires reset"),
        ("[Unknown Error]", "Unknown Error"),
        ("[GPU is lost]", "GPU is lost"),
    ],
)
def test_a_faulty_gpu_is_never_free_even_at_zero_memory(reading: str, token: str) -> None:
    # The bug: memory read 0, so a GPU that needs a reset was offered as free.
    faulty = f"1, GPU-1, {A100}, 81920, 0, 0, {reading}, {reading}, 00000000:01:00.0, Disabled"
    snap = snap_of(poll([row(0), faulty]))
    gpu = snap.gpus[1]
    assert (gpu.index, gpu.fault, gpu.memory_used_mib, gpu.temperature_c) == (1, token, 0, NA)
    assert snap.gpus[0].fault is None
    assert free_of(snap) == [True, False]

    summary = summarize([snap], lambda _h: LIMITS)
    assert (summary.free, summary.total, summary.gpus_faulty) == (1, 2, 1)
    assert summary.needs_attention
    assert summary_line(summary) == "1 of 2 GPUs free on 1 host, 1 GPU faulty"
    now = datetime(2026, 12, 5, tzinfo=UTC)
    assert host_status(snap, lambda _h: LIMITS, now) == "1/2 free, 1 faulty"
    assert gpu_line(gpu, 0, 1) == f"GPU 1 · A100 80GB · 0.0/80.0 GiB · 0% · FAULT: {token}"
    assert gpu_line(snap.gpus[0], 1, 1) == "GPU 0 · A100 80GB · 0.0/80.0 GiB · 0% · free"

    doc = status_document([snap], Config())
    assert [(g["index"], g["fault"], g["free"]) for g in doc["hosts"][0]["gpus"]] == [
        (0, None, True),
        (1, token, False),
    ]
    assert doc["free_gpus"] == 1

    table = status_table([snap], Config()).splitlines()
    assert [line.split()[-1] for line in table[1:3]] == ["FREE", "FAULT"]
    assert table[-1] == f"node GPU 1: {token}"


def test_a_fault_in_any_field_counts_and_other_readings_are_kept() -> None:
    faulty = (
        f"0, GPU-0, {A100}, 81920, [GPU requires reset], 7, 41, 60.5, 00000000:01:00.0, Disabled"
    )
    gpu = snap_of(poll([faulty])).gpus[0]
    assert (gpu.fault, gpu.memory_total_mib, gpu.utilization_pct, gpu.power_w) == (
        "GPU requires reset",
        81920,
        7,
        60.5,
    )


def test_a_lost_gpu_that_hides_its_index_takes_its_place_in_the_list() -> None:
    lost = ", ".join(["[GPU is lost]"] * 10)
    snap = snap_of(poll([row(0), lost]))
    assert [(g.index, g.fault) for g in snap.gpus] == [(0, None), (1, "GPU is lost")]
    assert snap.gpus[1].name == ""  # a placeholder is not a name


def test_unknown_readings_are_not_faults() -> None:
    for reading in ("[N/A]", "[Not Supported]", "[Insufficient Permissions]"):
        text = f"0, GPU-0, {A100}, 81920, 0, 0, {reading}, {reading}, 00000000:01:00.0, Disabled"
        gpu = snap_of(poll([text])).gpus[0]
        assert (gpu.fault, gpu.temperature_c, gpu.power_w) == (None, NA, NA)


def test_healthy_hosts_need_no_attention() -> None:
    summary = summarize([snap_of(poll([row(0)]))], lambda _h: LIMITS)
    assert (summary.gpus_faulty, summary.needs_attention) == (0, False)
    assert summary_line(summary) == "1 of 1 GPUs free on 1 host"


# -- memory unknown: unified memory (GB10 / DGX Spark, Jetson), some vGPUs ---------------

GB10 = "0, GPU-0, NVIDIA GB10, [N/A], [N/A], {util}, 41, 4.56, 0000000F:01:00.0, [N/A]"


@pytest.mark.parametrize(
    ("util", "apps", "free"),
    [
        ("0", [], True),  # the DGX Spark owner sees it free at last
        ("10", [], True),
        ("11", [], False),
        ("[N/A]", [], False),  # nothing measured at all: not free
        ("0", ["GPU-0, 5151, [N/A], python3"], False),
    ],
)
def test_memory_unknown_is_decided_on_processes_and_utilisation(
    util: str, apps: list[str], free: bool
) -> None:
    snap = snap_of(poll([GB10.format(util=util)], apps))
    gpu = snap.gpus[0]
    assert (gpu.memory_used_mib, gpu.memory_total_mib, gpu.processes_known) == (NA, NA, True)
    assert free_of(snap) == [free]


def test_memory_unknown_from_a_source_without_process_lists_is_not_free() -> None:
    from dataclasses import replace

    gpu = replace(snap_of(poll([GB10.format(util="0")])).gpus[0], processes_known=None)
    assert free_of(HostSnapshot("dcgm", HostState.OK, gpus=(gpu,))) == [False]


# -- [Insufficient Permissions] ------------------------------------------------------------


def test_hidden_pids_are_processes_we_cannot_name() -> None:
    apps = ["GPU-0, [Insufficient Permissions], [Insufficient Permissions], python"]
    snap = snap_of(poll([row(0), row(1)], apps))
    procs = snap.gpus[0].processes
    assert [(p.pid, p.name, p.used_memory_mib, p.user) for p in procs] == [
        (None, "python", NA, None)
    ]
    assert free_of(snap) == [False, True]


def test_an_unreadable_process_list_is_never_free() -> None:
    snap = snap_of(poll([row(0), row(1)], ["[Insufficient Permissions]"]))
    assert [g.processes_known for g in snap.gpus] == [False, False]
    assert free_of(snap) == [False, False]


def test_rows_for_a_gpu_we_cannot_tell_make_every_list_unknown() -> None:
    snap = snap_of(poll([row(0), row(1)], ["[N/A], 4242, 100, python"]))
    assert [g.processes_known for g in snap.gpus] == [False, False]
    assert free_of(snap) == [False, False]


def test_no_running_processes_prose_is_an_empty_list() -> None:
    snap = snap_of(poll([row(0)], ["No running processes found"]))
    assert (snap.gpus[0].processes, snap.gpus[0].processes_known) == ((), True)
    assert free_of(snap) == [True]


def test_mig_in_an_unprivileged_pod_is_unknown_not_a_crash() -> None:
    # Inside a pod, memory and PIDs read "[Insufficient Permissions]", and -q too.
    mig_row = (
        "0, GPU-0, NVIDIA A100-SXM4-40GB, [Insufficient Permissions], "
        "[Insufficient Permissions], [N/A], 33, 55.1, 00000000:07:00.0, Enabled"
    )
    apps = [
        "GPU-0, [Insufficient Permissions], [Insufficient Permissions], [Insufficient Permissions]"
    ]
    tail = [
        f"{MARK}mig-list",
        "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)",
        "  MIG 1g.5gb      Device  0: (UUID: MIG-aaaa)",
        f"{MARK}mig-query",
        "GPU 00000000:07:00.0",
        "    MIG Device",
        "        Index                             : 0",
        "        GPU Instance ID                   : [Insufficient Permissions]",
        "        Compute Instance ID               : [Insufficient Permissions]",
        "        FB Memory Usage",
        "            Total                         : [Insufficient Permissions]",
        "            Used                          : [Insufficient Permissions]",
        "    Processes",
        "        GPU instance ID                   : [Insufficient Permissions]",
        "        Process ID                        : [Insufficient Permissions]",
        "        Used GPU Memory                   : [Insufficient Permissions]",
    ]
    snap = snap_of(poll([mig_row], apps, tail=tail))
    gpu = snap.gpus[0]
    assert gpu.mig_enabled and gpu.fault is None
    assert [(m.index, m.profile, m.memory_used_mib) for m in gpu.mig_devices] == [(0, "1g.5gb", NA)]
    assert gpu.processes_known is False
    assert free_of(snap) == [False]


def test_an_unplaceable_pid_on_a_mig_gpu_keeps_every_instance_busy() -> None:
    # Real MIG capture, all instances idle, plus one process whose PID is hidden.
    out = poll_output(
        "h100-mig-idle",
        apps_lines=["GPU-00000000-0000-0000-0000-000000000000, [Insufficient Permissions], 0, x"],
    )
    snap = snap_of(out)
    assert free_of(snap) == [False, False, False, False]
    assert free_of(snap_of(poll_output("h100-mig-idle"))) == [True, True, True, True]


# -- rows as other platforms print them ----------------------------------------------------


def test_wsl2_process_rows() -> None:
    # WSL2: no per-process memory, and the name of a Windows-side process is not found.
    apps = ["GPU-0, 23, [N/A], [Not Found]", "GPU-0, 1042, [N/A], /usr/bin/python3.10"]
    gpu = snap_of(poll([row(0)], apps, ["     23 root"])).gpus[0]
    assert [(p.pid, p.name, p.used_memory_mib, p.user) for p in gpu.processes] == [
        (23, "", NA, "root"),
        (1042, "/usr/bin/python3.10", NA, None),
    ]


def test_process_names_with_commas() -> None:
    name = (
        "/opt/google/chrome/chrome --type=gpu-process "
        "--enable-features=Vulkan,VaapiVideoDecoder,CanvasOopRasterization --field-trial-handle=3,i,1"
    )
    apps = [f"GPU-0, 31337, 182, {name}", "GPU-0, 31338, 96, /usr/share/code/code --type=gpu,x"]
    gpu = snap_of(poll([row(0)], apps, ["  31337 a.very-long-username"])).gpus[0]
    assert [(p.pid, p.name, p.used_memory_mib, p.user) for p in gpu.processes] == [
        (31337, name, 182, "a.very-long-username"),
        (31338, "/usr/share/code/code --type=gpu,x", 96, None),
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("00000000:0B:00.0", (0, 0x0B, 0, 0)),
        ("0000:0b:00.0", (0, 0x0B, 0, 0)),
        ("03f8cfdd:00:00.0", (0x03F8CFDD, 0, 0, 0)),
        ("03F8CFDD:00:00.0", (0x03F8CFDD, 0, 0, 0)),
        ("not a bus id", None),
        ("", None),
    ],
)
def test_pci_addresses_compare_by_value(text: str, key: tuple | None) -> None:
    assert pci_key(text) == key


@pytest.mark.parametrize(
    ("csv_bus", "q_bus"),
    [
        ("0000:00:09.0", "00000000:00:09.0"),  # 4-digit domain in the CSV
        ("03f8cfdd:00:00.0", "03F8CFDD:00:00.0"),  # Hyper-V / WSL2 hex domain
    ],
)
def test_mig_detail_is_found_whatever_the_pci_domain_looks_like(csv_bus: str, q_bus: str) -> None:
    text = poll_output("h100-mig-idle").decode()
    text = text.replace("00000000:00:09.0, Enabled", f"{csv_bus}, Enabled")
    text = text.replace("GPU 00000000:00:09.0", f"GPU {q_bus}")
    gpu = snap_of(text.encode()).gpus[0]
    assert [(m.gpu_instance_id, m.memory_used_mib) for m in gpu.mig_devices] == [
        (2, 26),
        (3, 17),
        (9, 9),
        (10, 9),
    ]


def test_pids_ps_cannot_see_and_numeric_owners() -> None:
    # A PID in another container is not in ps's answer; a UID with no passwd entry
    # comes back as its number.
    apps = ["GPU-0, 4242, 1200, python", "GPU-0, 77, 900, /workspace/train"]
    gpu = snap_of(poll([row(0, mem="2100")], apps, ["   4242 1001"])).gpus[0]
    assert [(p.pid, p.user) for p in gpu.processes] == [(4242, "1001"), (77, None)]
    assert gpu.users == ("1001",)


def test_warnings_before_the_rows_are_not_rows() -> None:
    out = poll(["WARNING: infoROM is corrupted at gpu 0000:01:00.0", row(0)])
    assert [g.index for g in snap_of(out).gpus] == [0]


@pytest.mark.parametrize(
    ("printed", "code", "message"),
    [
        # Drivers before MIG (< 450) reject the field; the script retries without it,
        # so this only shows when the retry fails too.
        (
            'Field "mig.mode.current" is not a valid field to query.',
            2,
            'nvidia-smi failed (exit 2): Field "mig.mode.current" is not a valid field to query.',
        ),
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.",
            9,
            "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate "
            "with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and "
            "running.",
        ),
        (
            "No supported GPUs were found",
            255,
            "nvidia-smi failed (exit 255): No supported GPUs were found",
        ),
        (
            "Something no list of ours has",
            42,
            "nvidia-smi failed (exit 42): Something no list of ours has",
        ),
    ],
)
def test_any_non_zero_exit_carries_its_message(printed: str, code: int, message: str) -> None:
    out = f"{MARK}gpus rc={code} fields={GPU_FIELDS}\n{printed}\n{MARK}end\n".encode()
    result = parse_poll_output(out)
    assert (result.state, result.message, result.gpus) == (
        HostState.NVIDIA_SMI_ERROR,
        message,
        (),
    )


@pytest.mark.parametrize("digit", ["➍", "٣", "²"])
def test_non_ascii_digits_are_not_numbers(digit: str) -> None:
    out = poll([row(0, mem=digit)])
    result = parse_poll_output(out)
    assert (result.state, result.message) == (
        HostState.BAD_OUTPUT,
        f"Unreadable nvidia-smi output: memory.used is {digit!r}, not a number",
    )
    # In a PID or an owner's PID they are simply not PIDs: no crash, no owner.
    apps = [f"GPU-0, 12{digit}, 100, python"]
    snap = snap_of(poll([row(0)], apps, [f"  12{digit} bob"]))
    assert snap.gpus[0].processes_known is False
    assert free_of(snap) == [False]


@pytest.mark.parametrize("index", ["-1", "[N/A]", "0.5", "➍"])
def test_a_gpu_index_is_a_whole_number(index: str) -> None:
    # Found by the fuzzer (tests/fuzz): "-1" became GPU -1.
    line = f"{index}, GPU-0, {A100}, 81920, 0, 0, 30, 60.5, 00000000:00:00.0, Disabled"
    result = parse_poll_output(poll([line]))
    assert (result.state, result.message) == (
        HostState.BAD_OUTPUT,
        f"Unreadable nvidia-smi output: a GPU row has no index: {line[:80]!r}",
    )
