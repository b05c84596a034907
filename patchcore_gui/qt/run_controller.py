"""Starts, cancels and tears down prediction runs; forwards only the current run's signals.

Each run gets a new id. A run that is cancelled or replaced may still deliver a batch
already queued; its id no longer matches and it is dropped here, so the window never
mixes results of two runs. A run file created by a run that is no longer current is
closed here once its thread has ended (the window only ever holds the current one's).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.model import PatchCoreModel

from .run_session import GuardedRunFile
from .worker import RunHandle, RunRequest


class RunController(QObject):
    """Owns the worker threads; the window talks to runs only through this object."""

    #: image indices, scores, grids, error texts (current run only).
    batch_ready = Signal(object, object, object, list)
    #: done, total, elapsed seconds.
    progressed = Signal(int, int, float)
    #: cancelled, elapsed seconds, device used.
    run_finished = Signal(bool, float, str)
    #: one-line message.
    run_failed = Signal(str)
    #: the current run's file, created and open for writing (the receiver owns it now).
    store_opened = Signal(object)
    #: the current run's file cannot be created or written: one-line reason.
    store_failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._next_id = 0
        self._current = -1
        self._handles: dict[int, RunHandle] = {}

    @property
    def current_run_id(self) -> int:
        """Id of the run whose results are shown (-1 before the first)."""
        return self._current

    def is_running(self) -> bool:
        """True while the current run's thread is alive."""
        h = self._handles.get(self._current)
        return h is not None and h.is_running()

    def live_threads(self) -> int:
        """Threads not yet finished (old cancelled runs included)."""
        return sum(1 for h in self._handles.values() if h.is_running())

    def start(
        self, model: PatchCoreModel, images: ImageSet | None, *, device: str, batch_size: int, workers: int,
        run_path: str | None = None, resume: GuardedRunFile | None = None, precision: str = "auto",
    ) -> int:
        """Start a run (cancelling any current one); returns its id.

        ``run_path``: create this run file and score into it; ``resume``: score the
        images not yet done of this open run file. Neither: in memory only.
        """
        self.cancel()
        self._next_id += 1
        run_id = self._next_id
        self._current = run_id
        h = RunHandle(RunRequest(run_id, model, images, device, batch_size, workers, run_path, resume, precision))
        h.store_taken = resume is not None  # the window already owns a resumed store
        h.worker.batch_ready.connect(self._on_batch)
        h.worker.progressed.connect(self._on_progress)
        h.worker.failed.connect(self._on_failed)
        h.worker.finished.connect(self._on_finished)
        h.worker.store_opened.connect(self._on_store_opened)
        h.worker.store_failed.connect(self._on_store_failed)
        # Queued to this (GUI) thread: after the worker's last signals, in order.
        h.thread.finished.connect(self._reap_finished, Qt.ConnectionType.QueuedConnection)
        self._handles[run_id] = h
        h.start()
        return run_id

    def cancel(self) -> None:
        """Ask the current run to stop after its batch in flight; does not wait."""
        h = self._handles.get(self._current)
        if h is not None:
            h.cancel.set()

    def shutdown(self, wait_ms: int = 60_000) -> bool:
        """Cancel every run and wait for all threads to end (window closing)."""
        self._current = -1  # anything still queued is now stale
        ok = True
        for h in list(self._handles.values()):
            ok &= h.stop(wait_ms)
        for rid in list(self._handles):
            self._reap(rid)
        return ok

    # ------------------------------------------------------------------ slots
    def _on_batch(self, run_id: int, indices: object, scores: object, grids: object, errors: list) -> None:
        if run_id == self._current:
            self.batch_ready.emit(indices, scores, grids, errors)

    def _on_progress(self, run_id: int, done: int, total: int, elapsed: float) -> None:
        if run_id == self._current:
            self.progressed.emit(done, total, elapsed)

    def _on_failed(self, run_id: int, message: str) -> None:
        if run_id == self._current:
            self.run_failed.emit(message)

    def _on_finished(self, run_id: int, cancelled: bool, elapsed: float, device: str) -> None:
        if run_id == self._current:
            self.run_finished.emit(cancelled, elapsed, device)

    def _on_store_opened(self, run_id: int, store: object) -> None:
        h = self._handles.get(run_id)
        if run_id == self._current and h is not None:
            h.store_taken = True
            self.store_opened.emit(store)

    def _on_store_failed(self, run_id: int, message: str) -> None:
        if run_id == self._current:
            self.store_failed.emit(message)

    def _reap_finished(self) -> None:
        for rid in list(self._handles):
            self._reap(rid)

    def _reap(self, run_id: int) -> None:
        """Drop a finished run's objects (thread ended, so deleting them is safe).

        A run file nobody took over (the run was replaced before its file was handed
        to the window) is closed here, after its last write.
        """
        h = self._handles.get(run_id)
        if h is None or h.is_running():
            return
        del self._handles[run_id]
        if not h.store_taken and h.worker.store is not None:
            h.worker.store.close()
        h.worker.deleteLater()
        h.thread.deleteLater()
