"""Small widgets the Settings pages share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton


def button(name: str, text: str, slot: Callable[[], object]) -> QPushButton:
    """A push button that never becomes the dialog's default: Return in a field must
    not press "Remove"."""
    b = QPushButton(text)
    b.setObjectName(name)
    b.setAutoDefault(False)
    b.clicked.connect(lambda: slot())
    return b


def result_label(name: str) -> QLabel:
    """Where a page says how a test or a save went: wraps, and can be copied."""
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
