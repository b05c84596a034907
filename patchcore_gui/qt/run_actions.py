"""Runs as the window starts them: run a folder, resume a run file, cancel, and the end of a run.

The worker threads are ``RunController``'s; this object decides what to run with the
document's model, folder and run file and the toolbar's options, and keeps the
document's ``running`` state and the run's display (``RunView``) in step with them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from . import gc_freeze
from .document import InspectionDocument
from .run_controller import RunController
from .run_session import new_run_path
from .run_view import RunView
from .settings import AppSettings
from .status import finish_message
from .window_layout import WindowWidgets


class RunActions(QObject):
    """Start, resume and cancel runs of one window; ``finished`` after the last rows are shown."""

    #: cancelled (True when stopped early).
    finished = Signal(bool)

    def __init__(self, doc: InspectionDocument, ui: WindowWidgets, settings: AppSettings,
                 controller: RunController, view: RunView) -> None:
        super().__init__(doc)
        self.doc, self.ui, self.settings = doc, ui, settings
        self.controller, self.view = controller, view
        controller.run_finished.connect(self._on_finished)
        controller.run_failed.connect(lambda msg: doc.report_error(f"The run stopped: {msg}"))

    def start(self) -> bool:
        """Score every image of the open folder with the open model, into a new run file."""
        doc, tb = self.doc, self.ui.toolbar
        if doc.running:
            return False
        if doc.model is None or doc.image_set is None:
            doc.report_error("Open a model and an image folder first.")
            return False
        doc.new_results()
        doc.next_run_key()
        run_path = new_run_path(self.settings.runs_dir, Path(doc.image_set.root).name or "images")
        self._begin(len(doc.image_set), 0)
        self.controller.start(
            doc.model, doc.image_set, device=tb.device_combo.currentText(), precision=tb.precision,
            batch_size=tb.batch_spin.value(), workers=tb.workers_spin.value(), run_path=str(run_path),
        )
        doc.show_status(f"Running… (saving to {run_path.name})")
        return True

    def resume(self) -> bool:
        """Score the images the open run has not done yet, in the run's own batch size.

        That batch size reproduces the batches, and so the scores, of an uninterrupted run.
        """
        doc, tb = self.doc, self.ui.toolbar
        why = doc.resume_blocker()
        if why:
            doc.report_error(f"Cannot resume: {why}")
            return False
        store, st = doc.session.store, doc.results
        assert store is not None and st is not None and doc.model is not None
        batch = int(store.settings.get("batch_size") or tb.batch_spin.value())
        tb.batch_spin.setValue(batch)
        # The run's own arithmetic too, so resumed scores match the ones already stored.
        precision = str(store.settings.get("precision") or tb.precision)
        tb.set_precision(precision)
        self._begin(st.size, st.count)
        self.controller.start(
            doc.model, None, device=tb.device_combo.currentText(), batch_size=batch,
            workers=tb.workers_spin.value(), resume=store, precision=precision,
        )
        doc.show_status(f"Resuming: {st.size - st.count:,} images left (batch size {batch})…")
        return True

    def cancel(self) -> None:
        """Stop after the batch in flight; what was scored stays (and can be resumed)."""
        if self.doc.running:
            self.controller.cancel()
            self.doc.show_status("Cancelling after the current batch…")

    def stop_for_change(self) -> None:
        """A new model, folder or run makes the current run meaningless: cancel it and wait."""
        if self.doc.running:
            self.controller.shutdown()
            self.doc.set_running(False)
            self.view.end()
            self.ui.run_status.finish(0, 0.0, "")

    def shutdown(self) -> None:
        """The window closes: stop showing rows, stop every run and wait for its thread."""
        self.view.flush_timer.stop()
        self.controller.shutdown()
        self.doc.set_running(False)

    # ------------------------------------------------------------------ internals
    def _begin(self, total: int, already: int) -> None:
        gc_freeze.release()  # the results being replaced may be collected again
        self.doc.set_running(True)
        self.view.begin(total, already, self.ui.toolbar.device_combo.currentText())

    def _on_finished(self, cancelled: bool, elapsed: float, device: str) -> None:
        doc = self.doc
        # Not running any more before the last rows show: the flush draws everything at once.
        doc.set_running(False)
        self.view.end()
        n, total, errors = (st.count, st.size, len(st.errors)) if (st := doc.results) else (0, 0, 0)
        self.ui.run_status.finish(n, elapsed, device)
        text = finish_message(cancelled, n, total, elapsed, errors)
        if cancelled and doc.session.store is not None and not doc.session.write_error:
            text += " (File > Resume run goes on from here)"
        doc.show_status(text)
        gc_freeze.settle()  # results are final now: keep full collections off them
        self.finished.emit(cancelled)
