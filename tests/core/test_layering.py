"""The engine and I/O layers never import Qt (the GUI lives in patchcore_gui/qt only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
    files = sorted((PKG / "core").rglob("*.py")) + sorted((PKG / "io").rglob("*.py")) + [PKG / "cli.py"]
    assert len(files) > 15
    offenders = {str(f.relative_to(PKG)): sorted(_imports(f) & set(QT_MODULES)) for f in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_every_headless_module_loads_no_qt() -> None:
    mods = [f"patchcore_gui.{sub}.{p.stem}" for sub in ("core", "io") for p in sorted((PKG / sub).glob("*.py"))
            if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "import patchcore_gui.cli as c; c.build_parser()\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"
