"""A small window with what the tray shows: used when there is no system tray (GNOME
without the AppIndicator extension, some Wayland sessions), and when a second
`gpu-tray` asks the running one to show itself."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QFont, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.availability import host_units
from gpu_tray.core.models import utcnow
from gpu_tray.presenter.text import gpu_line, host_status, summary_line
from gpu_tray.presenter.tray_state import TrayState
from gpu_tray.ui.tray.icon import render_image

RENDER_MS = 1000


class StatusWindow(QWidget):
    def __init__(
        self,
        menu: QMenu,
        on_refresh: Callable[[], None],
        on_quit: Callable[[], None],
        tray_visible: Callable[[], bool],
    ) -> None:
        super().__init__()
        self.setObjectName("status-window")
        self.setWindowTitle("gpu-tray")
        self._tray_visible = tray_visible
        self._state: TrayState | None = None
        self._shown_summary = None
        self._throttle = QTimer(self, singleShot=True, interval=RENDER_MS)
        self._throttle.timeout.connect(self._render)

        self.icon = QLabel()
        self.icon.setFixedSize(48, 48)
        self.headline = QLabel("Starting…")
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setWordWrap(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes.hide()

        self.hosts = QTreeWidget()
        self.hosts.setObjectName("hosts")
        self.hosts.setHeaderLabels(["Host / GPU", "Status"])
        self.hosts.setRootIsDecorated(True)
        self.hosts.setUniformRowHeights(True)

        menu_button = QPushButton("Menu")
        menu_button.setMenu(menu)
        refresh = QPushButton("Refresh now")
        refresh.clicked.connect(on_refresh)
        quit_ = QPushButton("Quit")
        quit_.clicked.connect(on_quit)

        top = QHBoxLayout()
        top.addWidget(self.icon)
        top.addWidget(self.headline, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(menu_button)
        buttons.addStretch(1)
        buttons.addWidget(refresh)
        buttons.addWidget(quit_)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notes)
        layout.addWidget(self.hosts, 1)
        layout.addLayout(buttons)
        self.resize(560, 420)

    def set_state(self, state: TrayState) -> None:
        self._state = state
        # A big cluster's tree is not rebuilt on every snapshot: at most once a second.
        if self.isVisible() and not self._throttle.isActive():
            self._throttle.start()

    def showEvent(self, event) -> None:
        self._render()
        super().showEvent(event)

    def _render(self) -> None:
        state = self._state
        if state is None:
            return
        if state.summary != self._shown_summary:
            image = render_image(state.summary, 48, max(1, round(self.devicePixelRatioF())))
            self.icon.setPixmap(QPixmap.fromImage(image))
            self._shown_summary = state.summary
        self.headline.setText(summary_line(state.summary))
        self.notes.setText("\n".join(state.notes))
        self.notes.setVisible(bool(state.notes))
        now = utcnow()
        expanded = {
            self.hosts.topLevelItem(i).text(0)
            for i in range(self.hosts.topLevelItemCount())
            if self.hosts.topLevelItem(i).isExpanded()
        }
        self.hosts.clear()
        for snap in state.snapshots:
            status = host_status(snap, state.thresholds_for, now)
            if snap.message and not snap.ok:
                status += f": {snap.message}"
            item = QTreeWidgetItem([snap.name, status])
            units = host_units(snap, state.thresholds_for(snap.name))
            for gpu in snap.gpus:
                mine = [u for u in units if u.gpu_index == gpu.index]
                free = sum(1 for u in mine if u.free)
                item.addChild(QTreeWidgetItem([f"GPU {gpu.index}", gpu_line(gpu, free, len(mine))]))
            self.hosts.addTopLevelItem(item)
            item.setExpanded(snap.name in expanded)
        self.hosts.resizeColumnToContents(0)

    def closeEvent(self, event: QCloseEvent) -> None:
        # Without a tray this window is the only way back in: when the user closes it,
        # keep it in the taskbar. Quit (not spontaneous: Qt closes every window) goes on.
        if event.spontaneous() and not self._tray_visible():
            event.ignore()
            self.showMinimized()
        else:
            event.accept()
