"""Running `gpu-tray` as a user would: a subprocess of this checkout, with its own
home, config and data folders (so that a test can grep every file it wrote)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class User:
    """One user's machine: a home with ~/.ssh, a config dir and a data dir."""

    root: Path

    def __post_init__(self) -> None:
        for d in (self.home / ".ssh", self.config_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.config_dir / "gpu-tray" / "config.toml"

    @property
    def app_known_hosts(self) -> Path:
        return self.data_dir / "gpu-tray" / "known_hosts"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("GPU_TRAY_CONFIG", None)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.config_dir),
            XDG_DATA_HOME=str(self.data_dir),
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_STATE_HOME=str(self.root / "state"),
            PYTHONPATH=str(REPO),
        )
        env.update(extra)
        return env

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gpu_tray", *args],
            cwd=REPO,
            env=self.env(**env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def files_containing(self, needle: str) -> list[Path]:
        """Every file under this user's folders whose bytes contain `needle`."""
        hits = []
        data = needle.encode()
        for path in self.root.rglob("*"):
            if path.is_file() and data in path.read_bytes():
                hits.append(path)
        return hits
