"""Qt objects must be destroyed on the GUI thread. Python's cycle collector would otherwise
sweep a finished test's Qt objects from whatever thread allocates next (a poller worker
in the following test) and crash the run; so, as the app does (gpu_tray/ui/gc_guard.py),
collect on the main thread around each test, and not automatically during it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture
def make_app(qapp, tmp_path):
    """make_app(config_text, probes, demo) -> (TrayApp, recording notifier); stopped after."""
    from tests.ui.app_harness import make_app_fixture

    yield from make_app_fixture(qapp, tmp_path)
