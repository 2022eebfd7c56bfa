"""The Slurm source: sinfo/squeue/scontrol on a login node."""
