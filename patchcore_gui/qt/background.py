"""One function run off the GUI thread, with progress, cancel and a clean stop.

Used by the training, import and report dialogs. The function receives
``progress(stage, done, total)`` and the ``threading.Event`` it must check; what it
returns arrives in ``succeeded``, an exception in ``failed`` (one line, traceback on
stderr), and a cancellation (the event set, or one of the engine's cancel exceptions)
in ``cancelled``. ``stop`` sets the event and waits for the thread, so a window may
close while a task runs without "QThread: Destroyed while thread is still running".
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

#: progress(stage, done, total)
Progress = Callable[[str, int, int], None]
TaskFn = Callable[[Progress, threading.Event], Any]


def one_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception (the user sees this; stderr gets the traceback)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _is_cancel(exc: BaseException) -> bool:
    from patchcore_gui.core.coreset import CancelledError
    from patchcore_gui.reports.context import ReportCancelled

    return isinstance(exc, (CancelledError, ReportCancelled))


class _Worker(QObject):
    progressed = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    #: always emitted last, whatever happened.
    ended = Signal()

    def __init__(self, fn: TaskFn, cancel: threading.Event, describe: Callable[[BaseException], str]) -> None:
        super().__init__()
        self.fn = fn
        self.cancel = cancel
        self.describe = describe

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(lambda stage, done, total: self.progressed.emit(stage, done, total), self.cancel)
        except Exception as exc:  # every failure reaches the user as one line
            if self.cancel.is_set() or _is_cancel(exc):
                self.cancelled.emit()
            else:
                traceback.print_exc()
                self.failed.emit(self.describe(exc))
        else:
            self.succeeded.emit(result)
        finally:
            self.ended.emit()


class BackgroundTask(QObject):
    """Runs ``fn(progress, cancel)`` once on its own QThread; signals arrive on the GUI thread."""

    progressed = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    ended = Signal()

    def __init__(
        self, fn: TaskFn, name: str = "task", describe: Callable[[BaseException], str] = one_line,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = _Worker(fn, self.cancel_event, describe)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        # Direct: the thread ends from inside itself, never waiting for the GUI loop.
        self.worker.ended.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        for name_ in ("progressed", "succeeded", "failed", "cancelled", "ended"):
            getattr(self.worker, name_).connect(getattr(self, name_))

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def cancel(self) -> None:
        """Ask the function to stop at its next check; does not wait."""
        self.cancel_event.set()

    def stop(self, wait_ms: int = 120_000) -> bool:
        """Cancel and wait for the thread to end; True when it has ended."""
        self.cancel_event.set()
        return self.thread.wait(wait_ms)
