"""``patchcore doctor``: what is installed, what the machine offers, what is missing.

Every probe is wrapped so that a missing or broken package is reported as a problem
instead of crashing the command: that is exactly the situation doctor exists for.
Qt modules are imported lazily, here only. Exit code 0 when nothing needed is missing,
1 otherwise (the reasons are the rows marked PROBLEM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OK = "ok"
INFO = "info"
PROBLEM = "PROBLEM"

#: (import name, shown name, what it is needed for). All are dependencies of the
#: package (pyproject.toml), so a missing one is a broken install, hence a problem.
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("torch", "torch", "all computation"),
    ("torchvision", "torchvision", "backbones and preprocessing"),
    ("faiss", "faiss", "nearest-neighbour search"),
    ("numpy", "numpy", "all computation"),
    ("safetensors", "safetensors", "model files"),
    ("PIL", "Pillow", "image decoding"),
    ("timm", "timm", "the EfficientNet-Lite0 backbone"),
    ("PySide6", "PySide6", "the desktop application"),
    ("pyqtgraph", "pyqtgraph", "the application's charts"),
)

#: QSettings organisation folder (qt/settings.py: ORGANIZATION), spelled out here so
#: doctor needs no Qt import to find it.
SETTINGS_ORGANIZATION = "PatchCore"


@dataclass
class Check:
    """One row of the report."""

    group: str
    name: str
    status: str  # OK, INFO or PROBLEM
    value: str
    detail: str = ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _version_of(module: Any) -> str:
    v = getattr(module, "__version__", None)
    if v is None and getattr(module, "__name__", "") == "PIL":
        v = getattr(module, "PILLOW_VERSION", None)
    return str(v) if v is not None else "installed (version unknown)"


def check_packages() -> list[Check]:
    """Python and each package's version; an import failure is a problem row."""
    rows = [Check("versions", "python", OK, platform.python_version(), sys.executable)]
    try:
        from .. import __version__

        rows.append(Check("versions", "patchcore_gui", OK, str(__version__)))
    except Exception as exc:  # report, never crash
        rows.append(Check("versions", "patchcore_gui", PROBLEM, "unknown", _first_line(exc)))
    for module_name, shown, needed_for in PACKAGES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, OSError (missing .so), anything
            rows.append(Check("versions", shown, PROBLEM, "missing", f"needed for {needed_for}: {_first_line(exc)}"))
            continue
        rows.append(Check("versions", shown, OK, _version_of(module)))
    rows.extend(_check_qt_widgets(rows))
    return rows


def _check_qt_widgets(rows: list[Check]) -> list[Check]:
    """QtWidgets loads its system libraries (GL, xkbcommon...): a common failure on servers."""
    if not any(r.name == "PySide6" and r.status == OK for r in rows):
        return []
    try:
        importlib.import_module("PySide6.QtWidgets")
    except Exception as exc:  # a missing system library raises ImportError/OSError
        return [Check("versions", "Qt widgets", PROBLEM, "cannot load", _first_line(exc))]
    return [Check("versions", "Qt widgets", OK, "loadable")]


def check_x_libraries() -> list[Check]:
    """The X11 libraries Qt's window plugin needs on Linux (missing: the packages and the apt command)."""
    from patchcore_gui.core.x_libraries import install_command, missing_x_packages, needs_xcb

    if not sys.platform.startswith("linux"):
        return []
    missing = missing_x_packages()
    if not missing:
        return [Check("versions", "X11 libraries", OK, "installed")]
    # A problem where the window would open on X here; on a headless machine (a server,
    # CI, a pure command-line install) the commands work without them: information only.
    on_x = needs_xcb() and bool(os.environ.get("DISPLAY"))
    status = PROBLEM if on_x else INFO
    detail = install_command(missing) if on_x else f"needed only for the window on X11: {install_command(missing)}"
    return [Check("versions", "X11 libraries", status, f"missing: {', '.join(missing)}", detail)]


def check_device() -> list[Check]:
    """CUDA availability and the devices; CPU-only is fine, not a problem."""
    try:
        import torch
    except Exception as exc:
        return [Check("device", "torch device", PROBLEM, "unknown", f"torch cannot be imported: {_first_line(exc)}")]
    rows: list[Check] = []
    try:
        available = bool(torch.cuda.is_available())
        count = int(torch.cuda.device_count()) if available else 0
        names = [torch.cuda.get_device_name(i) for i in range(count)]
    except Exception as exc:  # a broken driver must not stop the report
        rows.append(Check("device", "CUDA", INFO, "unavailable", _first_line(exc)))
        available, count, names = False, 0, []
    else:
        if available:
            rows.append(Check("device", "CUDA", OK, f"{count} device(s)", "; ".join(names)))
        else:
            rows.append(Check("device", "CUDA", INFO, "not available", "running on the CPU"))
    build = getattr(torch.version, "cuda", None)
    rows.append(Check("device", "torch CUDA build", INFO, str(build) if build else "CPU-only build"))
    rows.append(Check("device", "CPU threads", INFO, str(torch.get_num_threads()), f"{os.cpu_count()} cores"))
    return rows


def check_faiss() -> list[Check]:
    """Which backend the search will use."""
    try:
        import faiss  # noqa: F401 - presence only; the version row is in check_packages
    except Exception as exc:
        return [Check("search", "faiss backend", PROBLEM, "missing", _first_line(exc))]
    try:
        from ..core.search import faiss_has_gpu

        gpu = faiss_has_gpu()
    except Exception as exc:
        return [Check("search", "faiss backend", INFO, "CPU", f"GPU probe failed: {_first_line(exc)}")]
    return [Check("search", "faiss backend", OK, "GPU" if gpu else "CPU",
                  "" if gpu else "CUDA runs use an exact torch search instead")]


def check_backbones() -> list[Check]:
    """Backbones whose weights are available offline; none at all is a problem."""
    try:
        from ..core.backbones import available_offline, hub_checkpoint_path

        found = available_offline()
    except Exception as exc:
        return [Check("weights", "backbones", PROBLEM, "unknown", _first_line(exc))]
    rows = [
        Check("weights", name, OK if path else INFO, "available" if path else "not found",
              path or f"supply --weights or copy it to {hub_checkpoint_path(name).parent}")
        for name, path in found.items()
    ]
    if not any(found.values()):
        rows.append(Check("weights", "any backbone", PROBLEM, "none available offline",
                          "training and the demo need at least one backbone's weights"))
    return rows


def settings_dir() -> Path:
    """The folder where Qt keeps this application's settings (IniFormat, user scope)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        # As for the cache: a relative XDG value is invalid and ignored.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / SETTINGS_ORGANIZATION


def cache_dir() -> Path:
    """The demo cache folder (``demo_root()``'s parent)."""
    from ..core.demo_data import demo_root

    return demo_root().parent


def writable(folder: Path) -> str:
    """'' when a file can be created and deleted in ``folder`` (made if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".doctor-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return exc.strerror or _first_line(exc)
    return ""


def check_folders() -> list[Check]:
    """Writable cache and settings folders (created if missing, as the app would)."""
    rows: list[Check] = []
    for name, locate in (("cache folder", cache_dir), ("settings folder", settings_dir)):
        try:
            folder = locate()
        except Exception as exc:
            rows.append(Check("folders", name, PROBLEM, "unknown", _first_line(exc)))
            continue
        why = writable(folder)
        if why:
            rows.append(Check("folders", name, PROBLEM, "not writable", f"{folder}: {why}"))
        else:
            rows.append(Check("folders", name, OK, "writable", str(folder)))
    with contextlib.suppress(Exception):
        import torch

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        rows.append(Check("folders", "torch hub weights", INFO, "exists" if hub.is_dir() else "absent", str(hub)))
    return rows


def run_checks() -> list[Check]:
    """Every check, in report order."""
    return [*check_packages(), *check_x_libraries(), *check_device(), *check_faiss(), *check_backbones(), *check_folders()]


def format_table(rows: list[Check]) -> str:
    """An aligned plain-text table followed by a one-line verdict."""
    header = ("group", "check", "status", "value", "detail")
    cells = [header] + [(r.group, r.name, r.status, r.value, r.detail) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for c in cells:
        lines.append(("  ".join(c[i].ljust(widths[i]) for i in range(4)) + "  " + c[4]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    problems = [r for r in rows if r.status == PROBLEM]
    if problems:
        lines.append("")
        lines.append(f"{len(problems)} problem(s): " + "; ".join(f"{r.name}: {r.value} ({r.detail})" for r in problems))
    else:
        lines.append("")
        lines.append("no problems found")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    """Add the ``doctor`` sub-command to ``patchcore``'s parser."""
    p = subparsers.add_parser("doctor", help="check the installation, device, weights and folders")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler: print the report; exit 1 when something needed is missing."""
    rows = run_checks()
    problems = [r for r in rows if r.status == PROBLEM]
    if args.json:
        doc = {
            "ok": not problems,
            "problems": [f"{r.name}: {r.value} ({r.detail})" if r.detail else f"{r.name}: {r.value}" for r in problems],
            "checks": [asdict(r) for r in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(rows))
    return 1 if problems else 0
