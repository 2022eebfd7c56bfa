"""What the tray runs on: the config as loaded (never raising) and the probes built
from it. Qt-free; called from the I/O worker on a reload."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from gpu_tray.core.config import ConfigError, load_config, resolve_config_path
from gpu_tray.core.settings import Config
from gpu_tray.sources.base import Probe

log = logging.getLogger(__name__)

DEMO_NOTE = "Demo cluster (simulated GPUs)"


def _demo_note() -> str:
    from gpu_tray.sources.demo.scripted import ENV_DEMO_SCRIPT

    if os.environ.get(ENV_DEMO_SCRIPT):
        return f"Scripted cluster (from ${ENV_DEMO_SCRIPT})"
    return DEMO_NOTE


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    #: Lines for the top of the menu: demo, first run, a config error.
    notes: tuple[str, ...] = ()
    #: Where watch toggles are saved; None: they last for this run only.
    watches_path: Path | None = None
    error: bool = False
    #: (--config, --demo) as given, so that "Reload configuration" reads the same way.
    origin: tuple[str | None, bool] = (None, False)


def load_app_config(cli_config: str | None, demo: bool) -> LoadedConfig:
    """What the tray runs on. Never raises: a bad file becomes a note and no hosts."""
    loaded = _load(cli_config, demo)
    return replace(loaded, origin=(cli_config, demo))


def _load(cli_config: str | None, demo: bool) -> LoadedConfig:
    path = resolve_config_path(cli_config)
    explicit = bool(cli_config or os.environ.get("GPU_TRAY_CONFIG"))
    if demo:
        if explicit and path.exists():
            try:
                config = load_config(path)
            except ConfigError as exc:
                return LoadedConfig(Config(demo=True, path=path), (str(exc),), None, error=True)
            return LoadedConfig(replace(config, demo=True), (_demo_note(),), path)
        return LoadedConfig(Config(demo=True), (_demo_note(),))
    if not path.exists():
        return LoadedConfig(
            Config(demo=True),
            (
                "First run: this is the demo cluster.",
                f"Add your hosts in Settings… (they are saved to {path}).",
            ),
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        return LoadedConfig(Config(path=path), (str(exc),), None, error=True)
    if not config.hosts and not config.sources:
        return LoadedConfig(
            replace(config, demo=True),
            (f"No [[hosts]] in {path} yet: showing the demo cluster.",),
        )
    return LoadedConfig(config, (), path)


def build_app_probes(loaded: LoadedConfig) -> tuple[list[Probe], str | None]:
    """(probes, problem). A source that cannot be built is a note, not a crash."""
    if loaded.error:
        return [], None
    from gpu_tray.credentials.keyring_store import default_store
    from gpu_tray.sources.factory import build_probes

    try:
        return list(build_probes(loaded.config, default_store())), None
    except Exception as exc:
        log.exception("building the sources failed")
        return [], f"Cannot start polling: {type(exc).__name__}: {exc}"
