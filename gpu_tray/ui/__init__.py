"""Qt widgets: the tray icon and menu, the status window, dialogs. The GUI thread only."""

from gpu_tray.ui.qt_guard import protect_singleton_refcounts

protect_singleton_refcounts()
