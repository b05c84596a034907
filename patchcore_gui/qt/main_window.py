"""The main window: wires the panels, the run controller and the settings together.

Panels own their widgets; this module only moves data between them. Scripting
surface (tests, automation): ``open_model``, ``open_folder``, ``start_run``,
``cancel_run``, ``set_threshold`` and the ``run_finished`` / ``threshold_changed``
signals. Every message to the user goes through ``_show_error`` / ``_show_info``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QSplitter, QVBoxLayout, QWidget

from patchcore_gui.core.datasets import ImageSet, scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError

from .image_pane import ImageInfo, ImagePane
from .metrics_panel import MetricsPanel
from .model_card import ModelCard
from .results_model import ResultsTableModel
from .results_panel import ResultsPanel
from .results_store import ResultStore
from .run_controller import RunController
from .settings import AppSettings
from .status import RunStatus
from .threshold_panel import ThresholdPanel
from .toolbar import MainToolBar

#: How often rows that arrived during a run are shown (ms): big inserts, not per image.
FLUSH_MS = 200
#: During a run the histogram and ROC are redrawn at most this often (s). pyqtgraph's
#: Python-side painting is ~10x slower while the worker competes for the GIL, and one
#: event-loop pass repaints every dirty widget, so plots redrawn on every flush made
#: the loop stall for 150 ms on 2 cores (measured); rows still appear every flush.
PLOT_REFRESH_S = 1.0
MODEL_FILTER = "PatchCore model (*.patchcore);;All files (*)"


class MainWindow(QMainWindow):
    """PatchCore Inspector's window."""

    #: cancelled (True when stopped early); emitted after the last rows are shown.
    run_finished = Signal(bool)
    threshold_changed = Signal(float)

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
        #: set by ``app.start_demo`` while the demo is prepared.
        self.demo_loader: object | None = None
        self.setWindowTitle("PatchCore Inspector")
        self.setAcceptDrops(True)
        self.controller = RunController(self)
        self._build()
        self._connect()
        self._restore_settings()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.toolbar = MainToolBar(self.settings.recent, self)
        self.addToolBar(self.toolbar)
        self.table_model = ResultsTableModel(self)
        self.results = ResultsPanel(self.table_model)
        self.image_pane = ImagePane()
        self.card = ModelCard()
        self.threshold_panel = ThresholdPanel()
        self.metrics_panel = MetricsPanel()
        self.metrics_panel.setVisible(False)

        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("rightSplitter")
        right.setChildrenCollapsible(False)
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(0, 0, 0, 0)
        top_lay.setSpacing(10)
        top_lay.addWidget(self.card)
        top_lay.addWidget(self.threshold_panel, 1)
        right.addWidget(top)
        right.addWidget(self.metrics_panel)
        right.setSizes([560, 340])
        self.right_splitter = right

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        for w, margin in ((self.results, 8), (self.image_pane, 0), (right, 8)):
            w.setContentsMargins(margin, margin, margin, margin)
            self.splitter.addWidget(w)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([430, 720, 380])
        self.setCentralWidget(self.splitter)

        self.run_status = RunStatus()
        self.statusBar().addPermanentWidget(self.run_status)
        self.flush_timer = QTimer(self, interval=FLUSH_MS)
        self.flush_timer.timeout.connect(self._flush)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, activated=self.image_pane.toggle_overlay)
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.results.search.setFocus)
        self._update_actions()

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

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.geometry("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1500, 900)
        for key, splitter in (("splitter", self.splitter), ("right_splitter", self.right_splitter)):
            state = s.geometry(key)
            if state is not None:
                splitter.restoreState(state)
        self.toolbar.device_combo.setCurrentText(s.device)
        self.toolbar.batch_spin.setValue(s.batch_size)
        self.toolbar.workers_spin.setValue(s.workers)
        self.image_pane.set_opacity(s.overlay_opacity)
        self.image_pane.set_colormap(s.colormap)

    def save_settings(self) -> None:
        """Store window layout and run / view options."""
        s = self.settings
        s.set_geometry("geometry", self.saveGeometry())
        s.set_geometry("splitter", self.splitter.saveState())
        s.set_geometry("right_splitter", self.right_splitter.saveState())
        s.device = self.toolbar.device_combo.currentText()
        s.batch_size = self.toolbar.batch_spin.value()
        s.workers = self.toolbar.workers_spin.value()
        s.overlay_opacity = self.image_pane.opacity_slider.value()
        s.colormap = self.image_pane.cmap_combo.currentText()
        s.sync()

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
        n_masks = sum(m is not None for m in image_set.mask_paths)
        gt = f" · ground truth ({n_masks} masks)" if image_set.has_labels else ""
        self.toolbar.folder_label.setText(f"{Path(path).name}: {len(image_set):,} images{gt}")
        self.toolbar.folder_label.setToolTip(str(path))
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
            self.results.select_image(current)
        self.threshold_panel.set_threshold(value)
        self.threshold_panel.set_origin(f"Threshold {value:.6g}: {origin}")
        self._update_counts()
        if self.store is not None and self.store.has_labels:
            self.metrics_panel.set_threshold(value)
        self.image_pane.set_thresholds(value, self.pixel_threshold, self._fallback_anchor())
        self.threshold_changed.emit(value)

    def set_pixel_threshold(self, value: float) -> None:
        """Anomaly-map level outlined as the defect region (and the heatmap's mid colour)."""
        self.pixel_threshold = float(value)
        self.threshold_panel.set_pixel_threshold(self.pixel_threshold)
        self.image_pane.set_thresholds(self.threshold, self.pixel_threshold, self._fallback_anchor())

    def save_threshold(self) -> bool:
        """Write a NEW model file carrying the current thresholds (never the open file)."""
        if self.model is None or not math.isfinite(self.threshold):
            self._show_error("Open a model and set a threshold first.")
            return False
        src = self.model.path or Path("model.patchcore")
        target = self._ask_save_path(str(src.with_name(f"{src.stem}-thr.patchcore")))
        if not target:
            return False
        if self.model.path is not None and Path(target).resolve() == self.model.path.resolve():
            self._show_error("Choose a new file name: the open model file is never overwritten.")
            return False
        folder = f" on {self.image_set.root.name} ({self.store.count} images)" if self.store and self.store.count else ""
        note = f"{self.threshold_origin}{folder}, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}, PatchCore Inspector"
        pixel = self.pixel_threshold if math.isfinite(self.pixel_threshold) else None
        try:
            new = self.model.with_threshold(self.threshold, note, pixel_threshold=pixel)
            new.save(target)
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
        n = self.store.count if self.store else 0
        self.run_status.finish(n, elapsed, device)
        total = len(self.image_set) if self.image_set else 0
        word = "Cancelled" if cancelled else "Done"
        errs = len(self.store.errors) if self.store else 0
        self.statusBar().showMessage(f"{word}: {n:,} of {total:,} images scored in {elapsed:.1f} s"
                                     + (f", {errs} unreadable" if errs else ""))
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
        st = self.store
        if st is None:
            return
        scores, labels = st.scored()
        self.threshold_panel.set_scores(scores, self._calibration_scores())
        if st.has_labels:
            self.metrics_panel.set_data(scores, labels, self.threshold)
        self._update_counts()
        self.image_pane.set_thresholds(self.threshold, self.pixel_threshold, self._fallback_anchor())

    def _select_first_row(self) -> None:
        if self.results.current_image() < 0 and self.table_model.rowCount():
            self.results.select_row(0)

    def _stop_for_change(self) -> None:
        """A new model or folder makes the current run meaningless: cancel it."""
        if self._running:
            self.controller.cancel()
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

    def _calibration_scores(self) -> np.ndarray:
        if self.model is None:
            return np.empty(0)
        return np.asarray(self.model.metadata.get("calibration", {}).get("scores", []), dtype=np.float64)

    def _fallback_anchor(self) -> float:
        """Colour-scale anchor when the model has no pixel threshold: the image threshold."""
        return self.threshold

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
        lab = int(st.labels[index])
        truth = "" if lab < 0 else ("good" if lab == 0 else (st.types[index] or "defect"))
        mask = st.mask_paths[index]
        self.image_pane.show_image(ImageInfo(
            key=self._run_key, index=index, path=st.paths[index], name=st.names[index],
            score=float(st.scores[index]), grid=st.grid(index),
            mask_path=os.fspath(mask) if mask is not None else None, truth=truth,
            error=st.errors.get(index, ""),
        ))

    # ------------------------------------------------------------------ dialogs
    def _ask_open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self._start_dir("models"), MODEL_FILTER)
        if path:
            self.open_model(path)

    def _ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", self._start_dir("folders"))
        if path:
            self.open_folder(path)

    def _ask_save_path(self, default: str) -> str:
        """Save dialog (asks before replacing a file); tests replace this method."""
        path, _ = QFileDialog.getSaveFileName(self, "Save model with this threshold", default, MODEL_FILTER)
        return path

    def _start_dir(self, kind: str) -> str:
        recent = self.settings.recent(kind)
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _show_error(self, text: str) -> None:
        """Every error reaches the user here: status bar + a non-modal message box."""
        self.last_error = text
        self.statusBar().showMessage(text, 15000)
        if self._box is not None:
            self._box.close()
        self._box = QMessageBox(QMessageBox.Icon.Warning, "PatchCore Inspector", text, parent=self)
        self._box.setWindowModality(Qt.WindowModality.NonModal)
        self._box.open()

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
        self.save_settings()
        self.controller.shutdown()
        self._running = False
        if self._box is not None:
            self._box.close()
        super().closeEvent(event)
