"""Running ``iter_predict`` off the GUI thread: a QObject worker on a QThread.

Signals carry the run id and plain data (numpy arrays, lists of str, numbers), never
tensors or Qt images. Cancellation goes through a ``threading.Event`` that the engine
checks between batches, so the batch in flight is finished, emitted and kept.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.model import PatchCoreModel, resolve_device


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs; the model object is shared read-only when on its device."""

    run_id: int
    model: PatchCoreModel
    images: ImageSet
    device: str = "auto"
    batch_size: int = 8
    workers: int = 0


class PredictWorker(QObject):
    """Scores one ``RunRequest``; lives in its own QThread, ``run`` is its only slot."""

    #: run id, image indices (int64), scores (float32), grids (float16), error texts.
    batch_ready = Signal(int, object, object, object, list)
    #: run id, images done, images in total, elapsed seconds.
    progressed = Signal(int, int, int, float)
    #: run id, cancelled, elapsed seconds, device used.
    finished = Signal(int, bool, float, str)
    #: run id, one-line message (the traceback goes to stderr).
    failed = Signal(int, str)

    def __init__(self, request: RunRequest, cancel: threading.Event) -> None:
        super().__init__()
        self.request = request
        self.cancel = cancel

    @Slot()
    def run(self) -> None:
        """Score all images, emitting one ``batch_ready`` per engine batch."""
        from patchcore_gui.core.engine import iter_predict

        req = self.request
        t0 = time.perf_counter()
        total = len(req.images.paths)
        done = 0
        device = "?"
        try:
            model = self._model_for_device(req)
            device = str(model.device)
            for res in iter_predict(
                model, req.images, batch_size=req.batch_size, num_workers=req.workers, cancel=self.cancel
            ):
                done += len(res)
                self.batch_ready.emit(
                    req.run_id, np.asarray(res.indices), np.asarray(res.scores),
                    np.asarray(res.grids), list(res.errors),
                )
                self.progressed.emit(req.run_id, done, total, time.perf_counter() - t0)
        except Exception as exc:  # shown to the user by the window, never swallowed
            traceback.print_exc()
            self.failed.emit(req.run_id, _one_line(exc))
        finally:
            cancelled = self.cancel.is_set() and done < total
            self.finished.emit(req.run_id, cancelled, time.perf_counter() - t0, device)

    @staticmethod
    def _model_for_device(req: RunRequest) -> PatchCoreModel:
        """The request's model when it is on the wanted device, else a copy loaded there."""
        dev = resolve_device(req.device)
        if dev == req.model.device:
            return req.model
        if req.model.path is None:
            raise ValueError("this model has no file to load onto another device; save it first")
        return PatchCoreModel.load(Path(req.model.path), device=dev)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class RunHandle:
    """A worker, its thread and its cancel event; ``stop`` cancels and waits."""

    def __init__(self, request: RunRequest) -> None:
        self.run_id = request.run_id
        self.cancel = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName(f"predict-run-{request.run_id}")
        self.worker = PredictWorker(request, self.cancel)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        # Direct: quit() is called from the worker thread itself (QThread.quit is
        # thread-safe), so ending the thread never waits for the GUI thread's loop.
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread to end; True when it has ended."""
        self.cancel.set()
        self.thread.quit()
        return self.thread.wait(wait_ms)
