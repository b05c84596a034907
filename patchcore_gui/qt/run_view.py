"""Showing a run as it arrives: rows flushed on a timer, plots throttled, progress in the status bar.

Batches land in the document's ``ResultTable`` (cheap numpy writes); the table,
histogram and metrics catch up on a timer, never per image (see docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer

from .document import InspectionDocument
from .model_thresholds import calibration_scores
from .window_layout import WindowWidgets
from .window_state import follow_minimum_height, update_minimum_size

#: How often rows that arrived during a run are shown (ms): big inserts, not per image.
FLUSH_MS = 200
#: During a run the histogram and ROC are redrawn at most this often (s). pyqtgraph's
#: Python-side painting is ~10x slower while the worker competes for the GIL, and one
#: event-loop pass repaints every dirty widget, so plots redrawn on every flush made
#: the loop stall for 150 ms on 2 cores (measured); rows still appear every flush.
PLOT_REFRESH_S = 1.0


class RunView(QObject):
    """The window's result display: show the document's results, take batches, flush them on a timer."""

    def __init__(self, doc: InspectionDocument, ui: WindowWidgets) -> None:
        super().__init__(doc)
        self.doc = doc
        self.ui = ui
        self.flush_timer = QTimer(self, interval=FLUSH_MS)
        self.flush_timer.timeout.connect(self.flush)
        self._progress = (0, 0, 0.0)
        self._plots_at = 0.0
        self._shown_count = -1

    # ------------------------------------------------------------------ lifecycle
    def install(self) -> None:
        """Show the document's results (empty for a new run, filled for an opened run file)."""
        w, store = self.ui, self.doc.results
        self._shown_count = -1
        if not self.doc.running:
            w.run_status.clear()  # the previous run's rate and device belong to other results
        w.table_model.set_store(store)
        empty = store is None or store.count == 0
        w.image_pane.clear("Press Run (Ctrl+R) to score the folder." if store is not None and empty else "")
        has_gt = bool(store and store.has_labels)
        w.results.set_ground_truth_filters(has_gt)
        w.metrics_panel.setVisible(has_gt)
        update_minimum_size(w.metrics_panel.window())  # the metrics tabs need their room too
        self.flush()

    def begin(self, total: int, already: int, device: str) -> None:
        """A run starts (``already`` images done before, when resuming)."""
        self._progress = (already, total, 0.0)
        self.ui.run_status.start(total, device, already)
        self.flush_timer.start()

    def end(self) -> None:
        """The run ended: stop the timer, show the last rows, and let the minimum size follow."""
        self.flush_timer.stop()
        self.flush()
        # The panels need more room once rows arrived (number columns, ground-truth tabs);
        # a minimum taken before the run lets the slider run over the histogram.
        # Deferred: the run-finished handlers that follow still fill the status bar.
        window = self.ui.metrics_panel.window()
        QTimer.singleShot(0, window, lambda: follow_minimum_height(window))

    # ------------------------------------------------------------------ run signals
    def on_batch(self, indices: np.ndarray, scores: np.ndarray, grids: np.ndarray, errors: list) -> None:
        if self.doc.results is not None:
            self.doc.results.add(indices, scores, grids, errors)  # cheap; rows appear on the next flush

    def on_progress(self, done: int, total: int, elapsed: float) -> None:
        self._progress = (done, total, elapsed)  # shown on the next flush, not per batch

    # ------------------------------------------------------------------ display
    def flush(self) -> None:
        """Show rows that arrived, refresh histogram / metrics (on a timer, not per image).

        During a run the plots and the first image are drawn in later event-loop
        passes: one pass doing all of it (rows + plots + image) blocked the loop for
        ~100 ms on 2 cores; split, each pass stays well under that.
        """
        w = self.ui
        st = self.doc.results
        running = self.doc.running
        if st is None:
            self.refresh_plots()
            return
        w.table_model.publish()
        if running:
            w.run_status.progress(*self._progress)
        now = time.monotonic()
        plots_due = not running or now - self._plots_at >= PLOT_REFRESH_S
        if st.count != self._shown_count and plots_due:
            self._plots_at = now
            self._shown_count = st.count
            self._later(self.refresh_plots, running)
        if w.results.current_image() < 0 and w.table_model.rowCount():
            self._later(self._select_first_row, running)
        w.results.update_count()  # the total grows even when no row passes the filter
        if not running:
            w.results.announce_empty()

    def _later(self, fn: Callable[[], None], deferred: bool) -> None:
        if deferred:
            QTimer.singleShot(0, self, fn)
        else:
            fn()

    def refresh_plots(self) -> None:
        w, doc = self.ui, self.doc
        st = doc.results  # without a folder, the model's calibration scores alone
        scores, labels = st.scored() if st is not None else (np.empty(0), np.empty(0))
        w.threshold_panel.set_scores(scores, calibration_scores(doc.model))
        if st is not None and st.has_labels:
            w.metrics_panel.set_data(scores, labels, doc.image_threshold, doc.review_from)
        self.update_counts()
        w.image_pane.set_thresholds(doc.image_threshold, doc.pixel_threshold, doc.review_from)

    def update_counts(self) -> None:
        """OK / REVIEW / NG / error counts at the document's thresholds."""
        st, t = self.doc.results, self.doc.image_threshold
        c = st.counts(t, self.doc.review_from) if st else {"ok": 0, "review": 0, "ng": 0, "error": 0}
        self.ui.threshold_panel.set_counts(c["ok"], c["ng"], c["error"], c["review"])

    def _select_first_row(self) -> None:
        w = self.ui
        if w.results.current_image() < 0 and w.table_model.rowCount():
            w.results.select_row(0)
