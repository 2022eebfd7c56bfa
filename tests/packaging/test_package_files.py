"""What the wheel and the sdist are told to carry, and where the app looks for it.

The build itself is tested in test_installed_wheel.py; these checks are fast and say
exactly which line of pyproject.toml or which shipped file is wrong.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import gpu_tray
from gpu_tray.platform import resources
from gpu_tray.platform.resources import Located, Origin, locate

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
DATA = {"gpu_tray.data.resources": "resources", "gpu_tray.data.packaging": "packaging"}


def test_the_package_list_names_every_folder_of_gpu_tray() -> None:
    """A package missing from the list would be missing from the wheel: ImportError at run."""
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gpu_tray").rglob("__init__.py")
    }
    assert set(SETUPTOOLS["packages"]) - set(DATA) == folders


def test_the_data_packages_are_the_top_level_folders() -> None:
    assert SETUPTOOLS["package-dir"] == DATA
    assert set(DATA) <= set(SETUPTOOLS["packages"])


@pytest.mark.parametrize("relative", resources.SHIPPED)
def test_every_shipped_file_exists_and_a_package_data_pattern_takes_it(relative: str) -> None:
    assert (ROOT / relative).is_file()
    folder, name = relative.split("/")
    [package] = [pkg for pkg, src in DATA.items() if src == folder]
    patterns = SETUPTOOLS["package-data"][package]
    assert any(fnmatch.fnmatch(name, p) for p in patterns), (name, patterns)


def test_the_install_scripts_are_not_package_data() -> None:
    scripts = [p.name for p in (ROOT / "packaging").glob("*.sh")]
    assert scripts  # run.sh, test.sh, common.sh
    patterns = SETUPTOOLS["package-data"]["gpu_tray.data.packaging"]
    assert not [s for s in scripts if any(fnmatch.fnmatch(s, p) for p in patterns)]


def metainfo() -> ET.Element:
    return ET.parse(ROOT / resources.METAINFO).getroot()


def test_the_metainfo_names_the_app_its_desktop_entry_and_this_version() -> None:
    root = metainfo()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == resources.APP_ID
    [launchable] = root.findall("launchable")
    assert launchable.get("type") == "desktop-id"
    assert (ROOT / "packaging" / launchable.text).is_file()
    assert root.findtext("provides/binary") == "gpu-tray"
    # A release without its <release> entry is one a software centre cannot describe.
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert gpu_tray.__version__ in versions


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="Debian's appstream is missing")
def test_the_metainfo_passes_appstreamcli_validate() -> None:
    done = subprocess.run(
        ["appstreamcli", "validate", "--pedantic", "--no-net", str(ROOT / resources.METAINFO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation was successful." in done.stdout


def fake_install(tmp_path: Path) -> Path:
    """A gpu_tray package folder as pip leaves it in site-packages."""
    package = tmp_path / "site-packages" / "gpu_tray"
    (package / "data" / "resources").mkdir(parents=True)
    (package / "data" / "resources" / "gpu-tray.svg").write_text("<svg/>")
    return package


def test_an_installed_package_reads_its_own_copy(tmp_path: Path) -> None:
    package = fake_install(tmp_path)
    assert locate(resources.ICON, package) == Located(
        package / "data" / "resources" / "gpu-tray.svg", Origin.PACKAGE
    )
    assert locate(resources.METAINFO, package) is None  # site-packages is no checkout


def test_a_run_from_source_falls_back_to_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "gpu_tray").mkdir(parents=True)
    (checkout / "resources").mkdir()
    (checkout / "resources" / "gpu-tray.svg").write_text("<svg/>")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'gpu-tray'\n")
    assert locate(resources.ICON, checkout / "gpu_tray") == Located(
        checkout / "resources" / "gpu-tray.svg", Origin.CHECKOUT
    )
    # ...but the installed copy wins when both exist.
    (checkout / "gpu_tray" / "data" / "resources").mkdir(parents=True)
    (checkout / "gpu_tray" / "data" / "resources" / "gpu-tray.svg").write_text("<svg/>")
    assert locate(resources.ICON, checkout / "gpu_tray").origin is Origin.PACKAGE


def test_these_tests_run_from_the_checkout_and_find_its_icon(caplog) -> None:
    caplog.set_level("INFO", logger="gpu_tray.platform.resources")
    assert resources.icon_path() == str(ROOT / "resources" / "gpu-tray.svg")
    assert f"app icon: {ROOT / 'resources' / 'gpu-tray.svg'} (source checkout)" in caplog.messages


def test_a_missing_icon_is_an_empty_path_and_a_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(resources, "package_dir", lambda: tmp_path / "gpu_tray")
    assert resources.icon_path() == ""
    assert caplog.messages == [
        "the app icon resources/gpu-tray.svg is missing: neither installed nor in a checkout"
    ]
