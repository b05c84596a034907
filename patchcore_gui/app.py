"""Entry point of the GUI: ``patchcore-gui [FILE ...] [--model MODEL] [--images DIR] [--run RUN.pcrun]``.

With no arguments the embedded demo (a model and a folder of images) is opened; it
is prepared in the background so the window shows at once. Bare paths are what a file
manager passes (the desktop entry's ``%F``): a ``.pcrun`` file opens as a run, a folder
as the images, any other file as the model. ``--self-test`` drives the window through
one inspection and exits (``patchcore_gui.qt.self_test``).

Imports are absolute so the module also works as a frozen program's entry point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from patchcore_gui import __version__

#: Run files (``qt/run_session.RUN_SUFFIX``, spelled out to keep start-up imports small).
RUN_SUFFIX = ".pcrun"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="patchcore-gui", description="PatchCore Inspector: review anomaly detection results.")
    p.add_argument("--model", help="a .patchcore model file to open")
    p.add_argument("--images", help="a folder of images to open (searched recursively)")
    p.add_argument("--run", help="a run file (.pcrun) to open for review or to resume")
    p.add_argument("--settings", help="an ini file for the window's settings (default: per user)")
    p.add_argument("--self-test", action="store_true",
                   help="open the demo model and folder (or --model / --images), run, move the threshold, "
                        "write a PDF report to a temporary folder, print one line per step and exit "
                        "(0 when all passed)")
    p.add_argument("--self-test-dir", metavar="DIR",
                   help="with --self-test: keep its settings, run file and report in DIR")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="a model (.patchcore), run (.pcrun) or folder to open, as a file manager passes them")
    args = p.parse_args(argv)
    _sort_files(p, args)
    return args


def _sort_files(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Give each bare path its role: a run file, an image folder or a model (one of each)."""
    for name in args.files:
        path = Path(name)
        role = "run" if path.suffix.lower() == RUN_SUFFIX else "images" if path.is_dir() else "model"
        if getattr(args, role):
            parser.error(f"more than one {role} given ({getattr(args, role)} and {name})")
        setattr(args, role, name)


def warn_missing_x_libraries() -> str:
    """Before Qt starts on X11: name missing system libraries and the command installing them.

    Qt's own failure is an abort with a plugin name; this says what to install. Only a
    warning: the check cannot see libraries a bundle carries, so Qt still gets its try.
    """
    from patchcore_gui.core.x_libraries import missing_x_message, needs_xcb

    if QApplication.instance() is not None or not needs_xcb():
        return ""
    message = missing_x_message()
    if message:
        print(f"patchcore-gui: {message}", file=sys.stderr)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit status."""
    args = parse_args(argv)
    warn_missing_x_libraries()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("PatchCore")
    app.setApplicationName("PatchCore Inspector")
    app.setApplicationVersion(__version__)
    from patchcore_gui.qt.style import apply_style

    apply_style(app)  # type: ignore[arg-type]
    if args.self_test:
        from patchcore_gui.qt.self_test import run_self_test

        workdir = Path(args.self_test_dir) if args.self_test_dir else None
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        return run_self_test(app, args, workdir=workdir)  # type: ignore[arg-type]
    from patchcore_gui.qt.startup import create_window

    window = create_window(args)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
