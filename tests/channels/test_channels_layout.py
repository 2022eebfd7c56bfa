"""gpu_tray/channels/ is Qt-free and never reaches into the app or the UI: the tray,
the settings dialog and `gpu-tray watch` all use it. (tests/test_layout.py checks the
other folders; this one is new.)"""

from __future__ import annotations

from tests.test_layout import PACKAGE, QT, graph, imports_of, modules


def test_channels_import_no_qt_and_no_app_or_ui() -> None:
    known = modules()
    edges = graph()
    mine = [m for m in known if m.startswith("gpu_tray.channels")]
    assert len(mine) >= 6
    for name in mine:
        outside = imports_of(name, known[name], known)
        assert not [m for m in outside if m.split(".")[0] in QT], name
        assert not [m for m in edges[name] if m.startswith(("gpu_tray.ui", "gpu_tray.app"))], name
    assert (PACKAGE / "channels" / "__init__.py").exists()
