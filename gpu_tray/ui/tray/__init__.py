"""The tray icon, its menu and tooltip, and the window shown without a tray."""
