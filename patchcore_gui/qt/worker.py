"""Running a prediction off the GUI thread: a QObject worker on a QThread.

The worker creates the run file and scores into it with ``predict_into_run`` (one
committed transaction per batch); each batch is also emitted to the window, which
keeps its own numpy columns for speed. A resume scores the remaining images of an
open run file. When the file cannot be created the run goes on in memory with
``iter_predict`` (the user is told). Signals carry the run id and plain data (numpy
arrays, lists of str, numbers, the run store object), never tensors or Qt images.
Cancellation goes through a ``threading.Event`` that the engine checks between
batches, so the batch in flight is finished, emitted and kept.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.model import PatchCoreModel, resolve_device, resolve_precision
from patchcore_gui.core.results import BatchResult

from .background import one_line
from .run_session import GuardedRunFile


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs; the model object is shared read-only when on its device."""

    run_id: int
    model: PatchCoreModel
    images: ImageSet | None
    device: str = "auto"
    batch_size: int = 8
    workers: int = 0
    #: A new run file to create and score into (None: in memory only).
    run_path: str | None = None
    #: An open run file to resume (only its images not yet done are scored).
    resume: GuardedRunFile | None = None
    #: "auto", "exact", "fast" or "half" (old "fp32" / "bf16" accepted); see core.precision.
    precision: str = "auto"


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
    #: run id, the run file's store (created here; the window takes it over).
    store_opened = Signal(int, object)
    #: run id, why the run file cannot be created or written (the run goes on in memory).
    store_failed = Signal(int, str)

    def __init__(self, request: RunRequest, cancel: threading.Event) -> None:
        super().__init__()
        self.request = request
        self.cancel = cancel
        #: The store this worker created (closed by the controller if nobody took it).
        self.store: GuardedRunFile | None = None
        self._t0 = 0.0
        self._done = 0
        self._total = 0

    @Slot()
    def run(self) -> None:
        """Score the images, emitting one ``batch_ready`` per engine batch."""
        req = self.request
        self._t0 = time.perf_counter()
        device = "?"
        try:
            model = self._model_for_device(req)
            device = str(model.device)
            if req.resume is not None:
                self._resume(model, req.resume, device)
            else:
                self._new_run(model, device)
        except Exception as exc:  # shown to the user by the window, never swallowed
            traceback.print_exc()
            self.failed.emit(req.run_id, one_line(exc))
        finally:
            # The store outlives this worker (the window keeps it): drop the callback
            # into this soon-deleted QObject.
            for store in (self.store, req.resume):
                if store is not None:
                    store.on_write_failed = None
            cancelled = self.cancel.is_set() and self._done < self._total
            self.finished.emit(req.run_id, cancelled, time.perf_counter() - self._t0, device)

    def _new_run(self, model: PatchCoreModel, device: str) -> None:
        from patchcore_gui.core.run_driver import predict_into_run
        from patchcore_gui.core.uri_scoring import uri_iter_predict

        req = self.request
        assert req.images is not None
        self._total = len(req.images)
        store = self._create_store(model, device) if req.run_path else None
        if store is None:  # in memory only
            for res in uri_iter_predict(model, req.images, batch_size=req.batch_size, num_workers=req.workers,
                                    cancel=self.cancel):
                self._emit_batch(res)
                self._emit_progress(self._done + len(res), self._total)
            return
        predict_into_run(
            model, req.images, store, batch_size=req.batch_size, num_workers=req.workers, device=device,
            cancel=self.cancel, on_batch=self._emit_batch, progress=self._emit_progress, scorer=uri_iter_predict,
        )

    def _resume(self, model: PatchCoreModel, store: GuardedRunFile, device: str) -> None:
        from patchcore_gui.core.run_driver import predict_into_run
        from patchcore_gui.core.uri_scoring import uri_iter_predict

        req = self.request
        self._total = len(store)
        self._done = len(store.done_indices())
        store.on_write_failed = lambda msg: self.store_failed.emit(req.run_id, msg)
        predict_into_run(
            model, None, store, resume=True, batch_size=req.batch_size, num_workers=req.workers,
            device=device, cancel=self.cancel, on_batch=self._emit_batch, progress=self._emit_progress,
            scorer=uri_iter_predict,  # local paths: iter_predict itself; a run of URIs fetches them
        )

    def _create_store(self, model: PatchCoreModel, device: str) -> GuardedRunFile | None:
        req = self.request
        assert req.run_path is not None and req.images is not None
        settings = {"device": device, "batch_size": int(req.batch_size), "num_workers": int(req.workers),
                    "precision": model.precision}
        try:
            Path(req.run_path).parent.mkdir(parents=True, exist_ok=True)
            store = GuardedRunFile.create(req.run_path, req.model, req.images, settings)
        except Exception as exc:  # any reason: the run goes on in memory
            traceback.print_exc()
            self.store_failed.emit(req.run_id, f"{Path(req.run_path).name}: {one_line(exc)}")
            return None
        self.store = store  # type: ignore[assignment]
        store.on_write_failed = lambda msg: self.store_failed.emit(req.run_id, msg)  # type: ignore[attr-defined]
        self.store_opened.emit(req.run_id, store)
        return store  # type: ignore[return-value]

    def _emit_batch(self, res: BatchResult) -> None:
        self.batch_ready.emit(
            self.request.run_id, np.asarray(res.indices), np.asarray(res.scores),
            np.asarray(res.grids), list(res.errors),
        )

    def _emit_progress(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        self.progressed.emit(self.request.run_id, done, total, time.perf_counter() - self._t0)

    @staticmethod
    def _model_for_device(req: RunRequest) -> PatchCoreModel:
        """The request's model when it has the wanted device and precision, else a copy.

        The window's model is shared read-only (overlays use it), so another device or
        precision gets its own copy: from the file, or with a copied backbone (switching
        precision changes the backbone's memory layout in place).
        """
        m = req.model
        dev = resolve_device(req.device)
        if dev == m.device and resolve_precision(req.precision, dev) == m.precision:
            return m
        if m.path is not None:
            return PatchCoreModel.load(Path(m.path), device=dev, precision=req.precision)
        return PatchCoreModel(m.config, copy.deepcopy(m.extractor), m.bank, m.metadata, device=dev,
                              precision=req.precision)


class RunHandle:
    """A worker, its thread and its cancel event; ``stop`` cancels and waits."""

    def __init__(self, request: RunRequest) -> None:
        self.run_id = request.run_id
        self.cancel = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName(f"predict-run-{request.run_id}")
        self.worker = PredictWorker(request, self.cancel)
        #: True once the window has taken over the worker's run store.
        self.store_taken = False
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
