"""The window as ``patchcore-gui`` opens it: the command line's files, else the last run or model, else the demo.

``app.py`` parses the command line and starts Qt; this module builds the window
(``--self-test`` builds it here too, so the test drives what a user gets).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .demo_child import DEFAULT_TARGET
from .demo_loader import DemoLoader
from .main_window import MainWindow
from .run_session import RUN_SUFFIX
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
    if not args.model and not args.images and not args.run and not reopen_last(window):
        start_demo(window, demo_target, demo_path)
    return window


def reopen_last(window: MainWindow) -> bool:
    """Open the run file or model opened last (a model with the last folder); False when gone."""
    s = window.settings
    last = Path(s.last_opened) if s.last_opened else None
    is_run = last is not None and last.is_file() and last.suffix.lower() == RUN_SUFFIX
    if is_run and window.open_run(last):  # type: ignore[arg-type]
        return True
    models = s.recent("models")
    model = last if last is not None and last.is_file() and last.suffix.lower() != RUN_SUFFIX else None
    model = model or (Path(models[0]) if models else None)
    if model is None or not window.open_model(model):
        return False
    folders = s.recent("folders")
    if folders:
        window.open_folder(folders[0])
    return True


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
