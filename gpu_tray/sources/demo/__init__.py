"""Simulated clusters: the built-in demo and a scripted one for tests."""
