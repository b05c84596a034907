"""The window as ``patchcore-gui`` opens it: from the command line's files, else on the demo.

``app.py`` parses the command line and starts Qt; this module builds the window
(``--self-test`` builds it here too, so the test drives what a user gets).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .demo_child import DEFAULT_TARGET
from .demo_loader import DemoLoader
from .main_window import MainWindow
from .settings import AppSettings


def create_window(
    args: argparse.Namespace, *, demo_target: str | None = None, demo_path: Sequence[str] = ()
) -> MainWindow:
    """Build the main window for ``args`` (a QApplication must exist).

    ``demo_target`` ("module:function") and ``demo_path`` replace the demo builder
    (tests use a stand-in; the default is ``patchcore_gui.core.demo:ensure_demo``).
    """
    window = MainWindow(AppSettings(args.settings) if args.settings else None)
    if args.model:
        window.open_model(args.model)
    if args.images:
        window.open_folder(args.images)
    if args.run:
        window.open_run(args.run)
    if not args.model and not args.images and not args.run:
        start_demo(window, demo_target, demo_path)
    return window


def start_demo(window: MainWindow, target: str | None = None, extra_path: Sequence[str] = ()) -> None:
    """Open the demo model and folder once they are ready; show any failure in the window."""
    loader = DemoLoader(window, target=target or DEFAULT_TARGET, extra_path=extra_path)
    window.demo_loader = loader
    window.image_pane.clear("Preparing the demo model and images…\n(the first start trains a small model)")
    window.run_status.busy("Preparing the demo…")

    def ready(model_path: str, images_dir: str) -> None:
        window.run_status.finish(0, 0.0, "")
        if window.open_model(model_path) and window.open_folder(images_dir):
            window.statusBar().showMessage("Demo ready: press Run (Ctrl+R)", 10000)

    def failed(message: str) -> None:
        window.run_status.finish(0, 0.0, "")
        window.show_error(f"The demo could not be prepared: {message}")
        window.image_pane.clear(f"The demo could not be prepared:\n{message}")

    loader.ready.connect(ready)
    loader.failed.connect(failed)
    loader.message.connect(lambda text: window.statusBar().showMessage(text))
    loader.start()
