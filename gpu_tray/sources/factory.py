"""Build the probes a config asks for."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gpu_tray.core.settings import Config
from gpu_tray.sources.base import NoSecrets, Probe, SecretLookup
from gpu_tray.sources.demo.cluster import demo_probes

log = logging.getLogger(__name__)


def build_probes(config: Config, secrets: SecretLookup | None = None) -> list[Probe]:
    if config.demo:
        from gpu_tray.sources.demo.scripted import ENV_DEMO_SCRIPT, scripted_probes

        if script := os.environ.get(ENV_DEMO_SCRIPT):
            return list(scripted_probes(Path(script)))
        return list(demo_probes())
    secrets = secrets or NoSecrets()
    probes: list[Probe] = []
    if config.hosts:
        from gpu_tray.sources.ssh.probe import SshProbe

        probes.extend(SshProbe(host, secrets) for host in config.hosts)
    for source in config.sources:
        if source.kind == "prometheus":
            from gpu_tray.sources.prometheus.probe import PrometheusProbe

            probes.append(PrometheusProbe(source, secrets))
        elif source.kind == "slurm":
            from gpu_tray.sources.slurm.probe import SlurmProbe

            probes.append(SlurmProbe(source, config, secrets))
    return probes
