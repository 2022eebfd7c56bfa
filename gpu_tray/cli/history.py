"""`gpu-tray history`: the history window on its own.

It reads the database the tray app writes and follows it while open (new polls
appear as the tray stores them). With --demo it reads the demo's own database,
simulating a week of history first if there is none yet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gpu_tray.cli.common import Usage, add_common_options, no_display

RANGE_CHOICES = ("1h", "6h", "24h", "7d", "30d")


def add_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "history", help="open the history window: plots per host, and when GPUs are usually free"
    )
    add_common_options(p)
    p.add_argument(
        "--db",
        metavar="PATH",
        help="history database (default: history.sqlite3 in the user data dir; "
        "with --demo, history-demo.sqlite3)",
    )
    p.add_argument(
        "--range", choices=RANGE_CHOICES, default="24h", help="the range shown first (default 24h)"
    )


def run(args: argparse.Namespace) -> int:
    from gpu_tray.store.paths import history_path

    if no_display():
        raise Usage("the history window needs a desktop session (DISPLAY or WAYLAND_DISPLAY)")
    path = Path(args.db).expanduser() if args.db else history_path(demo=args.demo)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["gpu-tray"])
    app.setApplicationName("gpu-tray")
    app.setDesktopFileName("gpu-tray")

    from gpu_tray.ui.history.window import HistoryWindow

    window = HistoryWindow(path, follow_db=True, initial_range=args.range)
    demo = bool(args.demo)

    def prepare() -> str:
        """Off the GUI thread: open (upgrade, or move aside if broken) the database, and
        for the demo simulate its first week."""
        from gpu_tray.store import HistoryWriter, StoreUnavailable, open_store

        if demo:
            from gpu_tray.store.demo_history import demo_history

            writer = HistoryWriter(path, backfill=demo_history)
            writer.start()
            writer.flush(timeout=300)
            writer.stop()
            if writer.error:
                raise StoreUnavailable(writer.error)
            return "ready"
        if not path.exists():
            return "empty"
        open_store(path).close()
        return "ready"

    def prepared(kind: str, _number: int, result: object) -> None:
        if kind == "prepare" and result == "ready":
            window.reload()
            window.load_heatmaps()

    def failed(kind: str, _number: int, message: str) -> None:
        if kind == "prepare":
            window.status.setText(message.split(": ", 1)[-1])

    window.loader.finished.connect(prepared)
    window.loader.failed.connect(failed)
    window.loader.submit("prepare", prepare)
    if demo:
        window.status.setText("Simulating a week of demo history…")
    window.show_and_raise()
    return int(app.exec())
