"""Dialogs that ask the user something: trust a host key, a secret, first run."""
