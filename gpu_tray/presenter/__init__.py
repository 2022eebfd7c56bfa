"""Qt-free: turns snapshots and rules into what the views paint and what to notify."""
