"""The tray's summary line in the states a user sees first."""

from __future__ import annotations

from gpu_tray.core.availability import ClusterSummary
from gpu_tray.presenter.text import summary_line


def test_summary_lines() -> None:
    assert summary_line(ClusterSummary(0, 0, 0, 0, 0)) == "No hosts"
    assert summary_line(ClusterSummary(0, 0, 3, 0, 0)) == "No data from 3 hosts yet"  # connecting
    assert summary_line(ClusterSummary(0, 0, 3, 3, 0)) == "No data from 3 hosts"
    assert summary_line(ClusterSummary(2, 8, 3, 1, 0)) == "2 of 8 GPUs free on 3 hosts, 1 failing"
    assert summary_line(ClusterSummary(1, 1, 1, 0, 0)) == "1 of 1 GPUs free on 1 host"
