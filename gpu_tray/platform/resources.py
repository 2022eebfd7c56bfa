"""Where the files the app ships besides its code are: the icon, the desktop entries, the
AppStream metainfo. Qt-free.

In the checkout they live at the top, in resources/ and packaging/ (DESIGN.md fixes that
layout). pyproject.toml maps both folders into the wheel as gpu_tray/data/resources and
gpu_tray/data/packaging, so the relative path is the same in both places:

- an installed gpu-tray (pip, pipx) reads them from its own package, through
  importlib.resources;
- a run from source (`python -m gpu_tray` in the checkout, or the editable install of
  packaging/run.sh, which has no gpu_tray/data) falls back to the checkout.

The installed copy always wins, so an installed app never depends on the folder it was
built from.
"""

from __future__ import annotations

import importlib.resources
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)

#: The AppStream component id; also the macOS LaunchAgent label.
APP_ID = "io.github.gpu_tray.gpu_tray"

ICON = "resources/gpu-tray.svg"
DESKTOP_ENTRY = "packaging/gpu-tray.desktop"
AUTOSTART_ENTRY = "packaging/gpu-tray-autostart.desktop"
METAINFO = f"packaging/{APP_ID}.metainfo.xml"
#: Everything the wheel and the sdist must carry (tests/packaging checks both).
SHIPPED = (ICON, DESKTOP_ENTRY, AUTOSTART_ENTRY, METAINFO)

#: The folder inside the installed package that mirrors the checkout's top level.
DATA_DIR = "data"


class Origin(StrEnum):
    PACKAGE = "installed package"
    CHECKOUT = "source checkout"


@dataclass(frozen=True, slots=True)
class Located:
    path: Path
    origin: Origin


def package_dir() -> Path | None:
    """The gpu_tray package folder on disk; None when it is not a plain folder (a zip
    import), where Qt could not open a file inside it anyway."""
    root = importlib.resources.files("gpu_tray")
    return root if isinstance(root, Path) else None


def locate(relative: str, package: Path | None = None) -> Located | None:
    """`relative` ("resources/gpu-tray.svg") from the installed package, else from the
    checkout the package was imported from; None when neither has it."""
    package = package if package is not None else package_dir()
    if package is None:
        return None
    installed = package / DATA_DIR / relative
    if installed.is_file():
        return Located(installed, Origin.PACKAGE)
    checkout = package.parent
    # Only a gpu-tray checkout counts: an installed package's parent is site-packages.
    if (checkout / "pyproject.toml").is_file() and (checkout / relative).is_file():
        return Located(checkout / relative, Origin.CHECKOUT)
    return None


def icon() -> Located | None:
    """The app's icon (an SVG); None when neither copy exists."""
    found = locate(ICON)
    if found is None:
        log.warning("the app icon %s is missing: neither installed nor in a checkout", ICON)
    else:
        log.info("app icon: %s (%s)", found.path, found.origin.value)
    return found


def icon_path() -> str:
    """The icon's path as a string, "" when it is missing (what Qt and D-Bus take)."""
    found = icon()
    return str(found.path) if found is not None else ""
