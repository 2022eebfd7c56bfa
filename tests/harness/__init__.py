"""Real daemons for the tests: sshd, keyring, desktop, Prometheus, Slurm."""
