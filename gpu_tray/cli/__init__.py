"""Command line: `gpu-tray` and one module per subcommand."""
