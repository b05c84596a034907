"""The main window: wires the panels, the run controller and the settings together.

Scripting surface (tests, automation): ``open_model``, ``open_folder``, ``start_run``,
``cancel_run``, ``set_threshold``; signals ``run_finished`` and ``threshold_changed``.
Every error for the user goes through ``_show_error`` (``last_error``, non-modal box).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter

from patchcore_gui.core.datasets import ImageSet, scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError

from . import dialogs
from .image_pane import ImageInfo, ImagePane
from .metrics_panel import MetricsPanel
from .model_card import ModelCard
from .results_model import ResultsTableModel
from .results_panel import ResultsPanel
from .results_store import ResultStore
from .run_controller import RunController
from .settings import AppSettings
from .status import RunStatus, finish_message
from .threshold_file import (
    calibration_scores,
    default_target,
    is_same_file,
    threshold_note,
    write_with_threshold,
)
from .threshold_panel import ThresholdPanel
from .toolbar import MainToolBar
from .window_layout import build_layout
from .window_state import restore_window_state, save_window_state

#: How often rows that arrived during a run are shown (ms): big inserts, not per image.
FLUSH_MS = 200
#: During a run the histogram and ROC are redrawn at most this often (s). pyqtgraph's
#: Python-side painting is ~10x slower while the worker competes for the GIL, and one
#: event-loop pass repaints every dirty widget, so plots redrawn on every flush made
#: the loop stall for 150 ms on 2 cores (measured); rows still appear every flush.
PLOT_REFRESH_S = 1.0


class MainWindow(QMainWindow):
    """PatchCore Inspector's window."""

    #: cancelled (True when stopped early); emitted after the last rows are shown.
    run_finished = Signal(bool)
    threshold_changed = Signal(float)

    # Built by ``window_layout.build_layout``.
    toolbar: MainToolBar
    table_model: ResultsTableModel
    results: ResultsPanel
    image_pane: ImagePane
    card: ModelCard
    threshold_panel: ThresholdPanel
    metrics_panel: MetricsPanel
    splitter: QSplitter
    right_splitter: QSplitter
    run_status: RunStatus

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.model: PatchCoreModel | None = None
        self.image_set: ImageSet | None = None
        self.store: ResultStore | None = None
        self.threshold = math.nan
        self.pixel_threshold = math.nan
        self.threshold_origin = ""
        self.last_error = ""
        self._run_key = 0
        self._running = False
        self._progress = (0, 0, 0.0)
        self._plots_at = 0.0
        self._shown_count = -1
        self._box: QMessageBox | None = None
        #: set by ``app.start_demo`` while the demo is prepared (a ``DemoLoader``).
        self.demo_loader: Any = None
        self.setWindowTitle("PatchCore Inspector")
        self.setAcceptDrops(True)
        self.controller = RunController(self)
        build_layout(self)
        self.flush_timer = QTimer(self, interval=FLUSH_MS)
        self.flush_timer.timeout.connect(self._flush)
        self._connect()
        self._update_actions()
        restore_window_state(self)

    # ------------------------------------------------------------------ wiring
    def _connect(self) -> None:
        tb = self.toolbar
        tb.open_model_action.triggered.connect(self._ask_open_model)
        tb.open_folder_action.triggered.connect(self._ask_open_folder)
        tb.recent_chosen.connect(lambda k, p: self.open_model(p) if k == "models" else self.open_folder(p))
        tb.run_action.triggered.connect(self.start_run)
        tb.cancel_action.triggered.connect(self.cancel_run)
        self.controller.batch_ready.connect(self._on_batch)
        self.controller.progressed.connect(self._on_progress)
        self.controller.run_finished.connect(self._on_run_finished)
        self.controller.run_failed.connect(lambda msg: self._show_error(f"The run stopped: {msg}"))
        self.results.image_selected.connect(self._show_image)
        self.image_pane.step_requested.connect(self.results.step)
        self.threshold_panel.threshold_edited.connect(lambda v: self.set_threshold(v, "set by hand"))
        self.threshold_panel.pixel_threshold_edited.connect(self.set_pixel_threshold)
        self.threshold_panel.reset_requested.connect(self._reset_thresholds)
        self.threshold_panel.save_requested.connect(self.save_threshold)
        self.metrics_panel.threshold_proposed.connect(self.set_threshold)

    # ------------------------------------------------------------------ scripting surface
    def open_model(self, path: str | os.PathLike[str]) -> bool:
        """Load a model file; an unusable one is reported in one sentence."""
        try:
            model = PatchCoreModel.load(path, device="cpu")
        except ModelFileError as exc:
            self._show_error(str(exc))
            return False
        except OSError as exc:
            self._show_error(f"{Path(path).name}: cannot be read ({exc.strerror or exc}).")
            return False
        self._stop_for_change()
        self.model = model
        self.settings.add_recent("models", path)
        self.card.set_summary(model.summary(), Path(path).name)
        self.image_pane.set_model(model)
        self.threshold_panel.set_enabled(True)
        self._reset_results()
        self._reset_thresholds()
        self._update_actions()
        self.statusBar().showMessage(f"Model {Path(path).name} loaded", 5000)
        return True

    def open_folder(self, path: str | os.PathLike[str]) -> bool:
        """Scan a folder recursively (MVTec ground truth detected) and show its image count."""
        try:
            image_set = scan_folder(path)
        except (OSError, ValueError) as exc:
            self._show_error(f"Cannot open the folder: {exc}")
            return False
        if len(image_set) == 0:
            self._show_error(f"No images found in {path} (looked for PNG, JPEG, BMP and TIFF, recursively).")
            return False
        self._stop_for_change()
        self.image_set = image_set
        self.settings.add_recent("folders", path)
        self.toolbar.set_folder(Path(path), image_set)
        self._reset_results()
        self._update_actions()
        return True

    def start_run(self) -> bool:
        """Score every image of the open folder with the open model."""
        if self._running:
            return False
        if self.model is None or self.image_set is None:
            self._show_error("Open a model and an image folder first.")
            return False
        self._reset_results()
        self._run_key += 1
        self._running = True
        self._progress = (0, len(self.image_set), 0.0)
        self.controller.start(
            self.model, self.image_set, device=self.toolbar.device_combo.currentText(),
            batch_size=self.toolbar.batch_spin.value(), workers=self.toolbar.workers_spin.value(),
        )
        self.run_status.start(len(self.image_set), self.toolbar.device_combo.currentText())
        self.flush_timer.start()
        self._update_actions()
        self.statusBar().showMessage("Running…")
        return True

    def cancel_run(self) -> None:
        """Stop after the batch in flight; what was scored stays."""
        if self._running:
            self.controller.cancel()
            self.statusBar().showMessage("Cancelling after the current batch…")

    def set_threshold(self, value: float, origin: str = "set by hand") -> None:
        """Move the image threshold: verdicts, counts, filter, metrics and overlay follow."""
        value = float(value)
        if not math.isfinite(value):
            return
        self.threshold = value
        self.threshold_origin = origin
        current = self.results.current_image()
        self.table_model.set_threshold(value)
        if current >= 0 and self.results.current_image() != current:
            self.results.restore_current(current)
        self.threshold_panel.set_threshold(value)
        self.threshold_panel.set_origin(f"Threshold {value:.6g}: {origin}")
        self._update_counts()
        if self.store is not None and self.store.has_labels:
            self.metrics_panel.set_threshold(value)
        self.image_pane.set_thresholds(value, self.pixel_threshold)
        self.threshold_changed.emit(value)

    def set_pixel_threshold(self, value: float) -> None:
        """Anomaly-map level outlined as the defect region (and the heatmap's mid colour)."""
        self.pixel_threshold = float(value)
        self.threshold_panel.set_pixel_threshold(self.pixel_threshold)
        self.image_pane.set_thresholds(self.threshold, self.pixel_threshold)

    def save_threshold(self) -> bool:
        """Write a NEW model file carrying the current thresholds (never the open file)."""
        if self.model is None or not math.isfinite(self.threshold):
            self._show_error("Open a model and set a threshold first.")
            return False
        target = self._ask_save_path(str(default_target(self.model.path)))
        if not target:
            return False
        if is_same_file(target, self.model.path):
            self._show_error("Choose a new file name: the open model file is never overwritten.")
            return False
        st = self.store
        note = threshold_note(self.threshold_origin, st.image_set.root.name if st else "", st.count if st else 0)
        try:
            new = write_with_threshold(self.model, target, self.threshold, self.pixel_threshold, note)
        except (OSError, ValueError, ModelFileError) as exc:
            self._show_error(f"Could not save {Path(target).name}: {exc}")
            return False
        self.model = new
        self.settings.add_recent("models", target)
        self.card.set_summary(new.summary(), Path(target).name)
        self.statusBar().showMessage(f"Saved {target}", 8000)
        return True

    def is_running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ run plumbing
    def _on_batch(self, indices: np.ndarray, scores: np.ndarray, grids: np.ndarray, errors: list) -> None:
        if self.store is not None:
            self.store.add(indices, scores, grids, errors)  # cheap; rows appear on the next flush

    def _on_progress(self, done: int, total: int, elapsed: float) -> None:
        self._progress = (done, total, elapsed)  # shown on the next flush, not per batch

    def _on_run_finished(self, cancelled: bool, elapsed: float, device: str) -> None:
        self.flush_timer.stop()
        self._running = False
        self._flush()
        n, total, errors = (st.count, st.size, len(st.errors)) if (st := self.store) else (0, 0, 0)
        self.run_status.finish(n, elapsed, device)
        self.statusBar().showMessage(finish_message(cancelled, n, total, elapsed, errors))
        self._update_actions()
        self.run_finished.emit(cancelled)

    def _flush(self) -> None:
        """Show rows that arrived, refresh histogram / metrics (on a timer, not per image).

        During a run the plots and the first image are drawn in later event-loop
        passes: one pass doing all of it (rows + plots + image) blocked the loop for
        ~100 ms on 2 cores; split, each pass stays well under that.
        """
        st = self.store
        if st is None:
            self._refresh_plots()
            return
        deferred = self._running
        self.table_model.publish()
        if self._running:
            self.run_status.progress(*self._progress)
        now = time.monotonic()
        plots_due = not self._running or now - self._plots_at >= PLOT_REFRESH_S
        if st.count != self._shown_count and plots_due:
            self._plots_at = now
            self._shown_count = st.count
            self._later(self._refresh_plots, deferred)
        if self.results.current_image() < 0 and self.table_model.rowCount():
            self._later(self._select_first_row, deferred)

    def _later(self, fn: Callable[[], None], deferred: bool) -> None:
        if deferred:
            QTimer.singleShot(0, self, fn)
        else:
            fn()

    def _refresh_plots(self) -> None:
        st = self.store  # without a folder, the model's calibration scores alone
        scores, labels = st.scored() if st is not None else (np.empty(0), np.empty(0))
        self.threshold_panel.set_scores(scores, calibration_scores(self.model))
        if st is not None and st.has_labels:
            self.metrics_panel.set_data(scores, labels, self.threshold)
        self._update_counts()
        self.image_pane.set_thresholds(self.threshold, self.pixel_threshold)

    def _select_first_row(self) -> None:
        if self.results.current_image() < 0 and self.table_model.rowCount():
            self.results.select_row(0)

    def _stop_for_change(self) -> None:
        """A new model or folder makes the current run meaningless: cancel it."""
        if self._running:
            self.controller.shutdown()
            self._running = False
            self.flush_timer.stop()
            self.run_status.finish(0, 0.0, "")

    def _reset_results(self) -> None:
        self.store = ResultStore(self.image_set) if self.image_set is not None else None
        self._shown_count = -1
        self.table_model.set_store(self.store)
        self.image_pane.clear("Press Run (Ctrl+R) to score the folder." if self.store else "")
        has_gt = bool(self.store and self.store.has_labels)
        self.results.set_ground_truth_filters(has_gt)
        self.metrics_panel.setVisible(has_gt)
        self._flush()

    # ------------------------------------------------------------------ helpers
    def _reset_thresholds(self) -> None:
        if self.model is None:
            return
        info = self.model.threshold_info
        t = self.model.image_threshold
        self.set_pixel_threshold(self.model.pixel_threshold)
        if math.isfinite(t):
            self.set_threshold(t, f"from the model ({info.get('source', '?')})")
        else:
            self.threshold_panel.set_origin("The model has no threshold: set one with the slider.")

    def _update_counts(self) -> None:
        c = self.store.counts(self.threshold) if self.store else {"ok": 0, "ng": 0, "error": 0}
        self.threshold_panel.set_counts(c["ok"], c["ng"], c["error"])

    def _update_actions(self) -> None:
        self.toolbar.set_running(self._running)
        self.toolbar.run_action.setEnabled(self.model is not None and self.image_set is not None)
        self.threshold_panel.save_button.setEnabled(self.model is not None and not self._running)

    def _show_image(self, index: int) -> None:
        st = self.store
        if st is None or index < 0:
            return
        mask = st.mask_paths[index]
        self.image_pane.show_image(ImageInfo(
            key=self._run_key, index=index, path=st.paths[index], name=st.names[index],
            score=float(st.scores[index]), grid=st.grid(index), truth=st.truth(index),
            mask_path=os.fspath(mask) if mask is not None else None, error=st.errors.get(index, ""),
        ))

    # ------------------------------------------------------------------ dialogs
    def _ask_open_model(self) -> None:
        path = dialogs.ask_model_path(self, self.settings.recent("models"))
        if path:
            self.open_model(path)

    def _ask_open_folder(self) -> None:
        path = dialogs.ask_folder(self, self.settings.recent("folders"))
        if path:
            self.open_folder(path)

    def _ask_save_path(self, default: str) -> str:
        """Where to save a model (tests replace this method)."""
        return dialogs.ask_save_path(self, default)

    def _show_error(self, text: str) -> None:
        """Every error reaches the user here: status bar + a non-modal message box."""
        self.last_error = text
        self.statusBar().showMessage(text, 15000)
        self._box = dialogs.show_warning(self, text, self._box)

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.is_dir():
                self.open_folder(path)
            elif path.is_file():
                self.open_model(path)
        event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Cancel a run and wait for its thread before the window goes."""
        self.flush_timer.stop()
        save_window_state(self)
        self.controller.shutdown()
        if self.demo_loader is not None:
            self.demo_loader.stop()
        self._running = False
        if self._box is not None:
            self._box.close()
        super().closeEvent(event)
