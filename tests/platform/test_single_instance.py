"""One gpu-tray per session: the lock decides, the socket carries "show yourself"."""

from __future__ import annotations

from pathlib import Path

from gpu_tray.platform.single_instance import SingleInstance


def test_second_instance_asks_the_first_to_show(qapp, qtbot, tmp_path: Path) -> None:
    first = SingleInstance(tmp_path)
    assert first.acquire()
    first.listen()
    second = SingleInstance(tmp_path)
    try:
        assert not second.acquire()
        with qtbot.waitSignal(first.show_requested, timeout=5000):
            # The first one answers from the event loop; asking blocks only this "process".
            assert second.ask_first_to_show(timeout_ms=3000)
    finally:
        first.release()
        second.release()


def test_a_crashed_instance_leaves_nothing_that_blocks_the_next(qapp, tmp_path: Path) -> None:
    # A crash leaves the socket file; the lock went with the process.
    first = SingleInstance(tmp_path)
    Path(first.socket_path).write_text("stale")
    assert first.acquire()
    first.listen()
    try:
        assert first._server is not None and first._server.isListening()
    finally:
        first.release()
    again = SingleInstance(tmp_path)
    try:
        assert again.acquire()  # released on exit
    finally:
        again.release()


def test_nobody_answers_when_nobody_listens(qapp, tmp_path: Path) -> None:
    lone = SingleInstance(tmp_path)
    assert lone.ask_first_to_show(timeout_ms=300) is False
