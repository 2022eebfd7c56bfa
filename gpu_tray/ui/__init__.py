"""Qt widgets: the tray icon and menu, the status window, dialogs. The GUI thread only."""
