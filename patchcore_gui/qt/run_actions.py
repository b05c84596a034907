"""Runs as the window starts them: run a folder, resume a run file, cancel, and the end of a run.

The worker threads are ``RunController``'s; this object decides what to run with the
document's model, folder and run file and the toolbar's options, and keeps the
document's ``running`` state and the run's display (``RunView``) in step with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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

#: Cancelling a run that has gone on longer than this (s) asks first: a slip of the
#: hand must not throw away minutes of scoring.
CONFIRM_CANCEL_AFTER_S = 5.0
#: ``confirm(title, question) -> bool``: asks the user (a message box in the window).
Confirm = Callable[[str, str], bool]


class RunActions(QObject):
    """Start, resume and cancel runs of one window; ``finished`` after the last rows are shown."""

    #: cancelled (True when stopped early).
    finished = Signal(bool)

    def __init__(self, doc: InspectionDocument, ui: WindowWidgets, settings: AppSettings,
                 controller: RunController, view: RunView, confirm: Confirm) -> None:
        super().__init__(doc)
        self.doc, self.ui, self.settings = doc, ui, settings
        self.controller, self.view, self.confirm = controller, view, confirm
        #: ``time.monotonic()`` when the current run started.
        self.started_at = 0.0
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
        run_path = new_run_path(self.settings.runs_dir, Path(doc.image_set.root).name or "images",
                                 model_name=doc.model_name)
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
        # The run's own arithmetic too, so resumed scores match the ones already stored
        # (for this run only: the toolbar keeps the user's choice, "auto" stays "auto").
        precision = str(store.settings.get("precision") or tb.precision)
        self._begin(st.size, st.count)
        self.controller.start(
            doc.model, None, device=tb.device_combo.currentText(), batch_size=batch,
            workers=tb.workers_spin.value(), resume=store, precision=precision,
        )
        doc.show_status(f"Resuming: {st.size - st.count:,} images left (batch size {batch})…")
        return True

    def cancel(self) -> bool:
        """Stop after the batch in flight; what was scored stays (and can be resumed).

        A run that has gone on for more than ``CONFIRM_CANCEL_AFTER_S`` is cancelled
        only once the user confirms. False when nothing was cancelled.
        """
        if not self.doc.running:
            return False
        took = time.monotonic() - self.started_at
        if took > CONFIRM_CANCEL_AFTER_S and not self.confirm(
            "Cancel the run?", f"The run has gone on for {took:.0f} s. Stop it after the current batch?"
            f"{self.kept_note()}"
        ):
            return False
        self.controller.cancel()
        self.doc.show_status("Cancelling after the current batch…")
        return True

    def kept_note(self) -> str:
        """What stays of the current run when it stops (" ..." or "" without a run file)."""
        s, st = self.doc.session, self.doc.results
        done = f"{st.count:,} of {st.size:,} images" if st is not None else "The images"
        if s.path is not None and not s.write_error:
            return (f"\n\n{done} scored so far are kept in the run file {s.path.name}: "
                    "File > Open run, then Resume run, goes on from there.")
        return f"\n\n{done} scored so far are shown but not saved (no run file)."

    def confirm_stop(self, what: str) -> bool:
        """``what`` would stop the run going on: True when none is, or the user agrees."""
        if not self.doc.running:
            return True
        return self.confirm("Stop the run?", f"A run is going on: {what} stops it.{self.kept_note()}\n\nStop the run?")

    def stop_for_change(self) -> None:
        """A new model, folder or run makes the current run meaningless: cancel it and wait."""
        if self.doc.running:
            st, s = self.doc.results, self.doc.session
            self.controller.shutdown()
            self.doc.set_running(False)
            self.view.end()
            self.ui.run_status.finish(0, 0.0, "")
            n = f"{st.count:,} of {st.size:,}" if st is not None else "some"
            kept = f" (kept in {s.path.name}: it can be resumed)" if s.path is not None and not s.write_error else ""
            self.doc.show_status(f"Run stopped: {n} images scored{kept}", 15000)

    def shutdown(self) -> None:
        """The window closes: stop showing rows, stop every run and wait for its thread."""
        self.view.flush_timer.stop()
        self.controller.shutdown()
        self.doc.set_running(False)

    # ------------------------------------------------------------------ internals
    def _begin(self, total: int, already: int) -> None:
        gc_freeze.release()  # the results being replaced may be collected again
        self.started_at = time.monotonic()
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
