"""Preparing the embedded demo (model + images) in the background at first launch.

``patchcore_gui.core.demo.ensure_demo`` may train the demo model on first use, which
takes a while on a CPU; it runs in a plain thread so the window is up at once, and
any failure (including the module missing) is shown in the window, never a crash.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal


class DemoLoader(QObject):
    """Runs ``ensure_demo()`` in a daemon thread; reports ``ready`` or ``failed``."""

    #: model file, images folder.
    ready = Signal(str, str)
    failed = Signal(str)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin preparing the demo (returns at once)."""
        self._thread = threading.Thread(target=self._work, name="demo-loader", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """For tests: wait until the thread ends; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        try:
            from patchcore_gui.core.demo import ensure_demo

            model_path, images_dir = ensure_demo(log=self._log)
            self._emit(self.ready, str(Path(model_path)), str(Path(images_dir)))
        except Exception as exc:
            traceback.print_exc()
            text = str(exc).strip().splitlines()
            self._emit(self.failed, f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)

    def _log(self, text: str) -> None:
        self._emit(self.message, text)

    @staticmethod
    def _emit(signal: object, *args: object) -> None:
        # RuntimeError: the window (and this object) went away while the demo was prepared.
        with contextlib.suppress(RuntimeError):
            signal.emit(*args)  # type: ignore[attr-defined]
