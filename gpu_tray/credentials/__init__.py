"""Passwords and passphrases in the OS keyring, never in a file."""
