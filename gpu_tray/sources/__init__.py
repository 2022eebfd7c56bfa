"""Qt-free data sources: ssh, demo, prometheus, slurm. See `base.Probe`."""
