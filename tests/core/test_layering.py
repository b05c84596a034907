"""Layering: Qt stays in patchcore_gui/qt, and the import graph points one way with no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import patchcore_gui

PKG = Path(patchcore_gui.__file__).parent
QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_and_io_sources_import_no_qt() -> None:
    files = [f for sub in ("core", "io", "reports", "commands") for f in sorted((PKG / sub).rglob("*.py"))]
    files.append(PKG / "cli.py")
    assert len(files) > 15
    offenders = {str(f.relative_to(PKG)): sorted(_imports(f) & set(QT_MODULES)) for f in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_every_headless_module_loads_no_qt() -> None:
    mods = [f"patchcore_gui.{sub}.{p.stem}" for sub in ("core", "io", "reports", "commands") for p in sorted((PKG / sub).glob("*.py"))
            if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "import patchcore_gui.cli as c; c.build_parser()\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the import graph
#
# decoding (io) <- engine (core) <- writers (reports) <- CLI (cli, commands) / GUI (qt, app).
# The graph counts every import, at module level and inside functions: a lazy import
# is still a dependency, and a cycle through one is still a cycle.

#: Layer of each top-level part of the package, and the parts each may import.
ALLOWED: dict[str, set[str]] = {
    "io": {"io"},
    "core": {"core", "io", "__init__"},  # __init__ holds only __version__
    "reports": {"reports", "core", "io", "__init__"},
    "commands": {"commands", "reports", "core", "io", "__init__"},
    "cli": {"commands", "reports", "core", "io", "__init__"},
    "qt": {"qt", "reports", "core", "io", "__init__"},
    "app": {"qt", "reports", "core", "io", "commands", "__init__"},
    "__init__": set(),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _our_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (module level and inside functions)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def add(target: str) -> None:
        # The longest known module prefix: "patchcore_gui.core.verdict.OK" -> ...verdict.
        parts = target.split(".")
        for k in range(len(parts), 0, -1):
            cand = ".".join(parts[:k])
            if cand in known:
                found.add(cand)
                return

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "patchcore_gui":
                    add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "patchcore_gui":
                continue
            for a in node.names:  # "from . import x" imports the module x
                if f"{mod}.{a.name}" in known:
                    add(f"{mod}.{a.name}")
                else:
                    add(mod)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _our_imports(m, p, known) for m, p in mods.items()}


def _part(module: str) -> str:
    """Top-level part of a module: io, core, reports, commands, qt, cli, app or __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative enough for us)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    g = _graph()
    assert len(g) > 60
    # cli.py imports its commands at module level; commands/report.py imports the report
    # writer inside its handler: both edges must be in the graph.
    assert "patchcore_gui.commands.predict" in g["patchcore_gui.cli"]
    assert "patchcore_gui.reports.report" in g["patchcore_gui.commands.report"]
    assert "patchcore_gui.core.verdict" in g["patchcore_gui.reports.context"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_modules() -> None:
    assert _cycles(_graph()) == []


def test_no_import_cycles_between_parts() -> None:
    parts: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        parts.setdefault(_part(m), set()).update(_part(d) for d in deps if _part(d) != _part(m))
    parts.pop("__init__", None)  # the package's __init__ only holds the version
    for deps in parts.values():
        deps.discard("__init__")
    assert _cycles(parts) == []


def test_each_part_imports_only_the_layers_below_it() -> None:
    bad = {m: sorted(d for d in deps if _part(d) not in ALLOWED[_part(m)])
           for m, deps in _graph().items()}
    assert {m: d for m, d in bad.items() if d} == {}


def test_io_is_the_ground_floor() -> None:
    g = _graph()
    assert all(not deps for m, deps in g.items() if _part(m) == "io")


def test_nothing_outside_the_gui_imports_it() -> None:
    importers = {m for m, deps in _graph().items() for d in deps if _part(d) == "qt"}
    assert {_part(m) for m in importers} <= {"qt", "app"}


def test_the_window_document_imports_no_widgets() -> None:
    doc = PKG / "qt" / "document.py"
    if not doc.exists():  # the document object lands with the window's reshaping
        pytest.fail("qt/document.py is missing")
    names: set[str] = set()
    for node in ast.walk(ast.parse(doc.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not {n for n in names if n.startswith(("PySide6.QtWidgets", "PySide6.QtGui", "pyqtgraph"))}
    assert not {n for n in names if n.endswith(("widgets_common", "image_pane", "main_window"))}
