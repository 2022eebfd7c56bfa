"""Slurm's numbers are ASCII: '➍', '²' and '٣' pass `str.isdigit()` (and `int()` takes
'٣'), so the parsers raised on them or read a number nobody wrote (issue 11)."""

from __future__ import annotations

import pytest

from gpu_tray.sources.slurm.parse import (
    GresEntry,
    expand_hostlist,
    gpu_request,
    parse_gres,
    parse_index_list,
    parse_sinfo_table,
)


@pytest.mark.parametrize("digit", ["➍", "²", "٣"])
def test_non_ascii_digits_are_not_numbers(digit: str) -> None:
    assert expand_hostlist(f"gpu[0-{digit}]") == [f"gpu[0-{digit}]"]  # kept whole
    assert expand_hostlist(f"gpu[{digit}],gpu[1-2]") == [f"gpu[{digit}]", "gpu1", "gpu2"]
    assert parse_index_list(f"0-{digit}") is None
    assert parse_index_list(f"{digit},1") is None
    assert parse_gres(f"gpu:a100:{digit}") == []
    assert parse_gres(f"gpu:a100:4(IDX:0-{digit})") == [GresEntry("gpu", "a100", 4, None)]
    assert gpu_request(f"gres/gpu:{digit}") == 1  # "gpu" with no count we can read
    assert gpu_request(f"gres/gpu={digit}") == 1


def test_the_fuzzers_input_reads_without_raising() -> None:
    # What the fuzzer found (tests/fuzz): one node's used indices spelt with '➍'.
    text = (
        "CPUS(A/I/O/T) MEMORY  ALLOCMEM GRES        GRES_USED              NODELIST\n"
        "4/36/0/40     180000  32768    gpu:V100:4  gpu:V100:4(IDX:➍-3)    hpc3-gpu-18-01\n"
        "4/36/0/40     180000  32768    gpu:V100:4  gpu:V100:2(IDX:0-1)    hpc3-gpu-18-02\n"
    )
    nodes = parse_sinfo_table(text)
    assert {n.name: (n.total_gpus, n.used_count, n.used_indices) for n in nodes.values()} == {
        "hpc3-gpu-18-01": (4, 4, None),
        "hpc3-gpu-18-02": (4, 2, frozenset({0, 1})),
    }
