"""gpu-tray: is a GPU free on our servers, and tell me the moment one is."""

__version__ = "0.1.0"
