"""The poll-output parser against real captures, every error form, and garbage."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_tray.core.availability import host_units
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.na import NA
from gpu_tray.core.settings import FreeThresholds
from gpu_tray.sources.ssh.nvsmi import (
    GPU_FIELDS_LEGACY,
    MARK,
    MSG_MISSING,
    POLL_COMMAND,
    POLL_SCRIPT,
    parse_poll_output,
)
from tests.captures import CAPTURES, NVSMI, error_output, poll_output, select

FULL_MIG = NVSMI / "full-captures" / "linux-x86_64__nvidia-h100-mig__590.48.01.txt"


def full_capture_section(title: str) -> str:
    """The body of one `# title` section of a full capture."""
    text = FULL_MIG.read_text()
    start = text.index(f"# {title}\n")
    body_start = text.index("#" * 80 + "\n", start) + 81
    end = text.find("\n" + "#" * 80, body_start)
    return text[body_start:end]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_every_real_capture_parses_ok(name: str) -> None:
    result = parse_poll_output(poll_output(name))
    assert result.state is HostState.OK
    assert result.message is None
    assert len(result.gpus) == 1
    assert result.gpus[0].memory_total_mib > 0


def test_h100_under_load_has_its_values_and_processes() -> None:
    result = parse_poll_output(poll_output("h100-load", owners={11345: "a.very-long-username"}))
    gpu = result.gpus[0]
    assert (gpu.index, gpu.name) == (0, "NVIDIA H100 80GB HBM3")
    assert (gpu.memory_used_mib, gpu.memory_total_mib) == (19818, 81559)
    assert (gpu.utilization_pct, gpu.temperature_c, gpu.power_w) == (100, 59, 631.95)
    assert [(p.pid, p.name, p.used_memory_mib) for p in gpu.processes] == [
        (11327, "/root/tools/memhog", 2566),
        (11328, "/root/tools/memhog", 1542),
        (11345, "./gpu_burn", 15690),
    ]
    # A 20-character name comes through whole; PIDs ps could not see have no owner.
    assert [p.user for p in gpu.processes] == [None, None, "a.very-long-username"]
    assert gpu.users == ("a.very-long-username",)


def test_windows_rows_have_unknown_process_memory() -> None:
    gpu = parse_poll_output(poll_output("rtx2080-windows-load")).gpus[0]
    assert len(gpu.processes) == 12
    assert all(p.used_memory_mib is NA for p in gpu.processes)
    assert gpu.processes[0].name.startswith("C:\\Windows\\SystemApps\\")


def test_mig_idle_units_are_the_mig_devices() -> None:
    gpu = parse_poll_output(poll_output("h100-mig-idle")).gpus[0]
    assert gpu.mig_enabled
    assert gpu.utilization_pct is NA
    assert [(m.index, m.profile, m.gpu_instance_id) for m in gpu.mig_devices] == [
        (0, "3g.40gb", 2),
        (1, "2g.20gb", 3),
        (2, "1g.10gb", 9),
        (3, "1g.10gb", 10),
    ]
    assert [(m.memory_used_mib, m.memory_total_mib) for m in gpu.mig_devices] == [
        (26, 40448),
        (17, 20096),
        (9, 9984),
        (9, 9984),
    ]
    snap = HostSnapshot("mig", HostState.OK, gpus=(gpu,))
    units = host_units(snap, FreeThresholds())
    assert [u.free for u in units] == [True, True, True, True]


def test_mig_under_load_places_processes_in_their_instance() -> None:
    apps = select(
        NVSMI / "query-compute-apps_H100-80GB-HBM3-MIG_linux_drv590.48.01_load.csv",
        "gpu_uuid,pid,used_gpu_memory,process_name",
    )
    out = poll_output(
        "h100-mig-idle", q_text=full_capture_section("load :: query (-q)"), apps_lines=apps
    )
    gpu = parse_poll_output(out).gpus[0]
    busy = gpu.mig_devices[0]
    assert [(p.pid, p.gpu_instance_id) for p in busy.processes] == [
        (21180, 2),
        (21181, 2),
        (21198, 2),
    ]
    assert all(not m.processes for m in gpu.mig_devices[1:])
    units = host_units(HostSnapshot("mig", HostState.OK, gpus=(gpu,)), FreeThresholds())
    assert [u.free for u in units] == [False, True, True, True]
    assert units[0].label == "GPU 0 MIG 0"


@pytest.mark.parametrize(
    ("printed", "code", "message"),
    [
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.",
            9,
            "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate "
            "with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and "
            "running.",
        ),
        (
            "Failed to initialize NVML: Driver/library version mismatch\n"
            "NVML library version: 590.48",
            18,
            "nvidia-smi failed (exit 18): Failed to initialize NVML: Driver/library version "
            "mismatch NVML library version: 590.48",
        ),
        (
            "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error",
            15,
            "nvidia-smi failed (exit 15): Unable to determine the device handle for GPU "
            "0000:0B:00.0: Unknown Error",
        ),
        ("No devices were found", 6, "nvidia-smi failed (exit 6): No devices were found"),
        ("", 255, "nvidia-smi failed (exit 255): (no message)"),
    ],
)
def test_nvidia_smi_errors_become_typed_states(printed: str, code: int, message: str) -> None:
    result = parse_poll_output(error_output(printed, code))
    assert result.state is HostState.NVIDIA_SMI_ERROR
    assert result.message == message
    assert result.gpus == ()


def test_missing_nvidia_smi() -> None:
    result = parse_poll_output(f"{MARK}missing\n".encode())
    assert (result.state, result.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)
    assert MSG_MISSING == "nvidia-smi was not found on the remote PATH"


def test_lost_gpu_field_value() -> None:
    rows = [
        "0, GPU-a, NVIDIA A100-SXM4-80GB, 81920, 0, 0, 30, 60.1, 00000000:07:00.0, Disabled",
        "1, GPU-b, NVIDIA A100-SXM4-80GB, [GPU is lost], [GPU is lost], [GPU is lost], "
        "[GPU is lost], [GPU is lost], 00000000:0B:00.0, [GPU is lost]",
    ]
    out = "\n".join(
        [
            f"{MARK}gpus rc=0 fields=index,uuid,name,memory.total,memory.used,utilization.gpu,"
            "temperature.gpu,power.draw,pci.bus_id,mig.mode.current",
            *rows,
            f"{MARK}apps rc=0",
            f"{MARK}owners",
            f"{MARK}end",
        ]
    ).encode()
    result = parse_poll_output(out)
    # The lost GPU is marked; the host and its healthy GPU stay usable.
    assert (result.state, result.message) == (HostState.OK, None)
    assert result.gpus[1].fault == "GPU is lost"
    assert result.gpus[0].fault is None
    units = host_units(HostSnapshot("h", HostState.OK, gpus=result.gpus), FreeThresholds())
    assert [u.free for u in units] == [True, False]


def test_legacy_driver_without_mig_field() -> None:
    out = (
        f"{MARK}gpus rc=0 fields={GPU_FIELDS_LEGACY}\n"
        "0, GPU-x, Tesla P100-PCIE-16GB, 16280, 0, 0, 37, 28.16, 00000000:00:04.0\n"
        f"{MARK}apps rc=0\nNo running processes found\n{MARK}owners\n{MARK}end"
    ).encode()
    result = parse_poll_output(out)
    assert result.state is HostState.OK
    assert result.gpus[0].name == "Tesla P100-PCIE-16GB"
    assert result.gpus[0].processes == ()


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (b"", "Unreadable nvidia-smi output: the poll script printed no GPU section (exit 0)"),
        (
            b"hello world\n",
            "Unreadable nvidia-smi output: the poll script printed no GPU section (exit 0)",
        ),
        (
            f"{MARK}gpus rc=0 fields=index,uuid\n0, GPU-1, extra\n{MARK}end".encode(),
            "Unreadable nvidia-smi output: a GPU row has 3 fields, expected 2: '0, GPU-1, extra'",
        ),
        (
            f"{MARK}gpus rc=0 fields={GPU_FIELDS_LEGACY}\n"
            "0, GPU-x, T4, lots, 0, 0, 37, 28.16, 00000000:00:04.0\n"
            f"{MARK}apps rc=0\n{MARK}owners\n{MARK}end".encode(),
            "Unreadable nvidia-smi output: memory.total is 'lots', not a number",
        ),
        (
            f"{MARK}gpus rc=0 fields={GPU_FIELDS_LEGACY}\n"
            "0, GPU-x, T4, 15360, 0, 0, 37, 28.16, 00000000:00:04.0\n".encode(),
            "Unreadable nvidia-smi output: the output was cut short",
        ),
        (
            f"{MARK}gpus rc=0 fields={GPU_FIELDS_LEGACY}\n{MARK}end".encode(),
            "Unreadable nvidia-smi output: no GPU rows",
        ),
    ],
)
def test_garbage_is_bad_output(stdout: bytes, message: str) -> None:
    result = parse_poll_output(stdout)
    assert (result.state, result.message) == (HostState.BAD_OUTPUT, message)


def test_script_is_constant_and_shell_neutral() -> None:
    # Runs under `sh -c '...'` from any login shell: no single quotes, no newlines.
    assert "'" not in POLL_SCRIPT
    assert "\n" not in POLL_SCRIPT
    assert "\\\\" not in POLL_SCRIPT
    assert POLL_COMMAND == "sh -c '" + POLL_SCRIPT + "'"
    # Owners come from a wide user column, never from `ps aux`.
    assert "user:64" in POLL_SCRIPT
    assert "ps aux" not in POLL_SCRIPT


VALID_STATES = set(HostState)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.binary(max_size=200), st.integers(-1, 300))
def test_arbitrary_bytes_never_raise(stdout: bytes, stderr: bytes, code: int) -> None:
    result = parse_poll_output(stdout, stderr, code)
    assert result.state in VALID_STATES
    if result.state is not HostState.OK:
        assert result.message


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(CAPTURES)),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.binary(max_size=12)),
        max_size=6,
    ),
)
def test_mangled_real_captures_never_raise(name: str, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(poll_output(name, owners={11345: "a.very-long-username"}))
    for pos, cut, insert in edits:
        pos %= max(len(data), 1)
        data[pos : pos + cut] = insert
    result = parse_poll_output(bytes(data))
    assert result.state in VALID_STATES
    if result.state is HostState.OK:
        assert result.message is None
        for gpu in result.gpus:
            assert isinstance(gpu.index, int)
    else:
        assert result.message and "\n" not in result.message


def test_messages_are_one_line() -> None:
    out = error_output("line one\n\n  line two  \n", 3)
    assert parse_poll_output(out).message == "nvidia-smi failed (exit 3): line one line two"
    assert re.fullmatch(r"[^\n]+", parse_poll_output(out).message or "")
