"""Qt widgets: the tray icon and menu, the status window, dialogs. The GUI thread only."""

from gpu_tray.ui.qt_guard import protect_none_refcount

protect_none_refcount()
