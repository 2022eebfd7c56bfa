"""The history window's People tab: who holds how many GPUs (at each host's newest
poll), how many of those are idle and since when, and GPU-hours per user over the last
day and week. The numbers come from `store.holders.people_view` on the loader's thread;
this widget only shows them. Usernames are shown in full."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.idle import duration_text
from gpu_tray.store.holder_views import PeopleView

COLUMNS = ("User", "GPUs now", "Idle now", "Idle since", "GPU-hours, 24 h", "GPU-hours, 7 d")


def row_texts(view: PeopleView) -> list[tuple[str, ...]]:
    """The table's cells, as shown (tests read these)."""
    rows = []
    for p in view.people:
        since = ""
        if p.idle_since is not None and view.as_of is not None:
            at = datetime.fromtimestamp(p.idle_since).strftime("%a %H:%M")
            since = f"{at} ({duration_text(view.as_of - p.idle_since)})"
        rows.append(
            (
                p.user,
                str(p.gpus_now),
                str(p.idle_now),
                since,
                f"{p.hours_day:.1f}",
                f"{p.hours_week:.1f}",
            )
        )
    return rows


class PeopleTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.note = QLabel("Loading…")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("people-table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSortingEnabled(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)

    def set_view(self, view: PeopleView) -> None:
        rows = row_texts(view)
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
        if view.as_of is None:
            self.note.setText("No polls in the last 48 h yet: the view fills in as gpu-tray polls.")
        else:
            at = datetime.fromtimestamp(view.as_of).strftime("%a %H:%M")
            self.note.setText(
                f"As of the newest poll ({at}). Idle: a process on the GPU and at most the "
                "[idle] utilisation for at least [idle] after_min. GPU-hours count every "
                "poll a user held a GPU for the time since the host's previous poll."
            )
