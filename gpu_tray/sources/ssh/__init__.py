"""The SSH source: ~/.ssh/config, known_hosts, auth, one session per host, nvidia-smi."""
