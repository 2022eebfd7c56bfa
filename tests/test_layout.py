"""The house rules: no import cycle anywhere in gpu_tray/, between modules or between
its folders; the core, the sources, the store and the presenter never import Qt;
and the top of the package holds only its entry points.

Every import counts, including those inside functions and under TYPE_CHECKING:
a lazy import hides a cycle from Python, not from the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gpu_tray"
QT = ("PySide6", "pyqtgraph", "shiboken6")
QT_FREE = ("core", "sources", "store", "presenter", "credentials", "channels")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of gpu_tray (and the outside top-level names) `path` imports."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {
        name: {m for m in imports_of(name, path, known) if m in known and m != name}
        for name, path in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def folder_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def folder_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for src, targets in edges.items():
        a = folder_of(src)
        for t in targets:
            b = folder_of(t)
            if a != b and a != "gpu_tray" and b != "gpu_tray":
                out.setdefault(a, set()).add(b)
    return out


def test_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "gpu_tray"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "one.py").write_text("def f():\n    from gpu_tray.a import two\n")
    (pkg / "a" / "two.py").write_text("from .one import f\n")
    (pkg / "b.py").write_text("from gpu_tray.a.one import f\n")
    assert cycles(graph(pkg)) == [["gpu_tray.a.one", "gpu_tray.a.two"]]


def test_no_import_cycle_between_modules():
    assert cycles(graph()) == []


def test_no_import_cycle_between_folders():
    assert cycles(folder_graph(graph())) == []


def test_qt_free_folders_never_import_qt():
    known = modules()
    offenders = []
    for name, path in known.items():
        if folder_of(name).split(".")[-1] not in QT_FREE:
            continue
        for imported in imports_of(name, path, known):
            if imported.split(".")[0] in QT:
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_qt_free_folders_import_no_qt_folder():
    """Transitively too: a Qt-free module may not import one from app/ or ui/."""
    edges = graph()
    qt_folders = {"gpu_tray.app", "gpu_tray.ui", "gpu_tray.cli"}
    bad = [
        f"{src} -> {dst}"
        for src, targets in edges.items()
        if folder_of(src).split(".")[-1] in QT_FREE
        for dst in targets
        if folder_of(dst) in qt_folders
    ]
    assert bad == []


def test_top_of_the_package_holds_only_entry_points():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"]
