"""The Prometheus source: DCGM exporter metrics."""
