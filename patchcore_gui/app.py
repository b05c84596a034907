"""Entry point of the GUI: ``patchcore-gui [--model MODEL] [--images DIR]``.

With no arguments the embedded demo (a model and a folder of images) is opened; it
is prepared in the background so the window shows at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from . import __version__


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="patchcore-gui", description="PatchCore Inspector: review anomaly detection results.")
    p.add_argument("--model", help="a .patchcore model file to open")
    p.add_argument("--images", help="a folder of images to open (searched recursively)")
    p.add_argument("--settings", help="an ini file for the window's settings (default: per user)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p.parse_args(argv)


def create_window(args: argparse.Namespace):  # noqa: ANN201 - MainWindow imported lazily
    """Build the main window for ``args`` (a QApplication must exist)."""
    from .qt.main_window import MainWindow
    from .qt.settings import AppSettings

    window = MainWindow(AppSettings(args.settings) if args.settings else None)
    if args.model:
        window.open_model(args.model)
    if args.images:
        window.open_folder(args.images)
    if not args.model and not args.images:
        start_demo(window)
    return window


def start_demo(window) -> None:  # noqa: ANN001
    """Open the demo model and folder once they are ready; show any failure in the window."""
    from .qt.demo_loader import DemoLoader

    loader = DemoLoader(window)
    window.demo_loader = loader
    window.image_pane.clear("Preparing the demo model and images…\n(the first start trains a small model)")
    window.statusBar().showMessage("Preparing the demo…")

    def ready(model_path: str, images_dir: str) -> None:
        if window.open_model(model_path) and window.open_folder(images_dir):
            window.statusBar().showMessage("Demo ready: press Run (Ctrl+R)", 10000)

    loader.ready.connect(ready)
    loader.failed.connect(lambda msg: window._show_error(f"The demo could not be prepared: {msg}"))
    loader.failed.connect(lambda msg: window.image_pane.clear(f"The demo could not be prepared:\n{msg}"))
    loader.message.connect(lambda text: window.statusBar().showMessage(text))
    loader.start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit status."""
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("PatchCore")
    app.setApplicationName("PatchCore Inspector")
    app.setApplicationVersion(__version__)
    from .qt.style import apply_style

    apply_style(app)  # type: ignore[arg-type]
    window = create_window(args)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
