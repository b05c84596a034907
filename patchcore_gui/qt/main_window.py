"""The main window: wires the panels, the run controller, the run file and the settings together.

Scripting surface (tests, automation): ``open_model``, ``open_folder``, ``open_run``,
``start_run``, ``resume_run``, ``cancel_run``, ``set_threshold`` / ``commit_threshold``,
``mark_current``, ``dialogs.show_train`` / ``show_import`` / ``show_report``; signals
``run_finished`` and ``threshold_changed``. Every error for the user goes through
``_show_error`` (``last_error``, non-modal box).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QSplitter

from patchcore_gui.core.datasets import ImageSet, scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError

from . import dialogs, heap, review, run_files
from .image_pane import ImageInfo, ImagePane
from .menus import MainMenus
from .metrics_panel import MetricsPanel
from .model_card import ModelCard
from .results_model import ResultsTableModel
from .results_panel import ResultsPanel
from .results_store import ResultStore
from .run_controller import RunController
from .run_session import RUN_SUFFIX, RunSession, new_run_path
from .run_view import RunView
from .settings import AppSettings
from .status import RunStatus, finish_message
from .threshold_file import save_threshold_as
from .threshold_panel import ThresholdPanel
from .toolbar import MainToolBar
from .window_dialogs import WindowDialogs
from .window_layout import build_layout
from .window_state import restore_window_state, save_window_state

TITLE = "PatchCore Inspector"


class MainWindow(QMainWindow):
    """PatchCore Inspector's window."""

    #: cancelled (True when stopped early); emitted after the last rows are shown.
    run_finished = Signal(bool)
    threshold_changed = Signal(float)

    # Built by ``window_layout.build_layout``.
    toolbar: MainToolBar
    menus: MainMenus
    table_model: ResultsTableModel
    results: ResultsPanel
    image_pane: ImagePane
    card: ModelCard
    threshold_panel: ThresholdPanel
    metrics_panel: MetricsPanel
    splitter: QSplitter
    right_splitter: QSplitter
    run_status: RunStatus
    run_file_label: QLabel
    toolbar_resume_action: QAction

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
        #: Thresholds as recorded in the run file (a change is logged against these).
        self._logged = {"image": math.nan, "pixel": math.nan}
        #: Why the open run cannot be resumed with the open model ("" when it can).
        self._run_model_note = ""
        self._box: QMessageBox | None = None
        #: set by ``app.start_demo`` while the demo is prepared (a ``DemoLoader``).
        self.demo_loader: Any = None
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.controller = RunController(self)
        self.session = RunSession(self)
        self.dialogs = WindowDialogs(self)
        build_layout(self)
        self.view = RunView(self)
        self._connect()
        self._update_actions()
        restore_window_state(self)

    # ------------------------------------------------------------------ wiring
    def _connect(self) -> None:
        tb, m, c, tp = self.toolbar, self.menus, self.controller, self.threshold_panel
        tb.open_model_action.triggered.connect(self._ask_open_model)
        tb.open_folder_action.triggered.connect(self._ask_open_folder)
        tb.recent_chosen.connect(lambda k, p: self.open_model(p) if k == "models" else self.open_folder(p))
        tb.run_action.triggered.connect(self.start_run)
        tb.cancel_action.triggered.connect(self.cancel_run)
        m.open_run_action.triggered.connect(lambda: run_files.ask_open_run(self))
        m.recent_run_chosen = self.open_run
        m.resume_action.triggered.connect(self.resume_run)
        m.export_action.triggered.connect(self.dialogs.show_report)
        m.import_action.triggered.connect(self.dialogs.show_import)
        m.quit_action.triggered.connect(self.close)
        m.train_action.triggered.connect(self.dialogs.show_train)
        m.save_threshold_action.triggered.connect(self.save_threshold)
        m.threshold_log_action.triggered.connect(self.dialogs.show_threshold_log)
        m.mark_ok_action.triggered.connect(lambda: self.mark_current("OK"))
        m.mark_ng_action.triggered.connect(lambda: self.mark_current("NG"))
        m.operator_action.triggered.connect(self.dialogs.ask_operator)
        for kind, action in m.review_filter_actions.items():
            action.triggered.connect(lambda _=False, k=kind: self.results.set_review_filter(k))
        m.overlay_action.triggered.connect(self.image_pane.toggle_overlay)
        m.fit_action.triggered.connect(self.image_pane.fit)
        m.find_action.triggered.connect(self.results.search.setFocus)
        c.batch_ready.connect(self.view.on_batch)
        c.progressed.connect(self.view.on_progress)
        c.run_finished.connect(self._on_run_finished)
        c.run_failed.connect(lambda msg: self._show_error(f"The run stopped: {msg}"))
        c.store_opened.connect(lambda store: run_files.on_store_opened(self, store))
        c.store_failed.connect(lambda msg: run_files.on_store_failed(self, msg))
        self.session.error.connect(self._show_error)
        self.session.changed.connect(self._update_actions)
        self.session.threshold_logged.connect(self.dialogs.refresh_threshold_log)
        self.results.image_selected.connect(self._show_image)
        self.image_pane.step_requested.connect(self.results.step)
        tp.threshold_edited.connect(lambda v: self.set_threshold(v, "set by hand"))
        tp.threshold_committed.connect(lambda: self.commit_threshold("image"))
        tp.pixel_threshold_edited.connect(self.set_pixel_threshold)
        tp.pixel_threshold_committed.connect(lambda: self.commit_threshold("pixel"))
        tp.reset_requested.connect(lambda: self._reset_thresholds(log=True))
        tp.save_requested.connect(self.save_threshold)
        tp.log_requested.connect(self.dialogs.show_threshold_log)
        self.metrics_panel.threshold_proposed.connect(lambda v, why: self.set_threshold(v, why, log=True))

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

    def open_run(self, path: str | os.PathLike[str]) -> bool:
        """Show a saved run again (read-only, with the reason, when another window writes it)."""
        return run_files.open_run(self, path)

    def start_run(self) -> bool:
        """Score every image of the open folder with the open model, into a new run file."""
        if self._running:
            return False
        if self.model is None or self.image_set is None:
            self._show_error("Open a model and an image folder first.")
            return False
        self._reset_results()
        self._run_key += 1
        run_path = new_run_path(self.settings.runs_dir, Path(self.image_set.root).name or "images")
        self._begin(len(self.image_set), 0)
        self.controller.start(
            self.model, self.image_set, device=self.toolbar.device_combo.currentText(),
            precision=self.toolbar.precision,
            batch_size=self.toolbar.batch_spin.value(), workers=self.toolbar.workers_spin.value(),
            run_path=str(run_path),
        )
        self.statusBar().showMessage(f"Running… (saving to {run_path.name})")
        return True

    def resume_run(self) -> bool:
        """Score the images the open run has not done yet, in the run's own batch size."""
        return run_files.resume_run(self)

    def resume_blocker(self) -> str:
        """Why the open run cannot be resumed now ("" when it can)."""
        return run_files.resume_blocker(self)

    def cancel_run(self) -> None:
        """Stop after the batch in flight; what was scored stays (and can be resumed)."""
        if self._running:
            self.controller.cancel()
            self.statusBar().showMessage("Cancelling after the current batch…")

    def set_threshold(self, value: float, origin: str = "set by hand", log: bool = False) -> None:
        """Move the image threshold: verdicts, counts, filter, metrics and overlay follow.

        ``log``: record the change in the run file now (otherwise the threshold panel
        commits it when the user lets go of the slider / line or enters a number).
        """
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
        self.view.update_counts()
        if self.store is not None and self.store.has_labels:
            self.metrics_panel.set_threshold(value)
        self.image_pane.set_thresholds(value, self.pixel_threshold)
        self.threshold_changed.emit(value)
        if log:
            self.commit_threshold("image")

    def set_pixel_threshold(self, value: float) -> None:
        """Anomaly-map level outlined as the defect region (and the heatmap's mid colour)."""
        self.pixel_threshold = float(value)
        self.threshold_panel.set_pixel_threshold(self.pixel_threshold)
        self.image_pane.set_thresholds(self.threshold, self.pixel_threshold)

    def commit_threshold(self, kind: str = "image", note: str = "") -> bool:
        """Record the current image (or pixel) threshold in the run's log if it changed."""
        new = self.threshold if kind == "image" else self.pixel_threshold
        old = self._logged[kind]
        if self.session.store is None or not math.isfinite(new) or new == old:
            return False
        if self.session.log_threshold(old, new, note or self.threshold_origin or "set by hand", kind):
            self._logged[kind] = new
            return True
        return False

    def mark_current(self, verdict: str) -> bool:
        """O / N: confirm the selected image OK / NG (again: clear), then go to the next one."""
        return review.mark_current(self, verdict)

    def save_threshold(self) -> bool:
        """Write a NEW model file carrying the current thresholds (never the open file)."""
        return save_threshold_as(self)

    def is_running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ run plumbing
    def _begin(self, total: int, already: int) -> None:
        heap.release()  # the results being replaced may be collected again
        self._running = True
        device = self.toolbar.device_combo.currentText()
        self.view.begin(total, already, device)
        self._update_actions()

    def _on_run_finished(self, cancelled: bool, elapsed: float, device: str) -> None:
        self._running = False
        self.view.end()
        n, total, errors = (st.count, st.size, len(st.errors)) if (st := self.store) else (0, 0, 0)
        self.run_status.finish(n, elapsed, device)
        text = finish_message(cancelled, n, total, elapsed, errors)
        if cancelled and self.session.store is not None and not self.session.write_error:
            text += " (File > Resume run goes on from here)"
        self.statusBar().showMessage(text)
        self._update_actions()
        heap.settle()  # results are final now: keep full collections off them
        self.run_finished.emit(cancelled)

    def _stop_for_change(self) -> None:
        """A new model, folder or run makes the current run meaningless: cancel it."""
        if self._running:
            self.controller.shutdown()
            self._running = False
            self.view.end()
            self.run_status.finish(0, 0.0, "")

    def _reset_results(self) -> None:
        """An empty result set for the open folder; the previous run file is closed."""
        self.threshold_panel.commit_pending()  # a change still pending belongs to that run
        self.session.close()
        self._run_model_note = ""
        self._logged = {"image": math.nan, "pixel": math.nan}
        self.view.install(ResultStore(self.image_set) if self.image_set is not None else None)
        self.dialogs.refresh_threshold_log()
        self._update_actions()

    # ------------------------------------------------------------------ helpers
    def _reset_thresholds(self, log: bool = False) -> None:
        if self.model is None:
            return
        info = self.model.threshold_info
        t = self.model.image_threshold
        self.set_pixel_threshold(self.model.pixel_threshold)
        if math.isfinite(t):
            self.set_threshold(t, f"from the model ({info.get('source', '?')})")
        else:
            self.threshold_panel.set_origin("The model has no threshold: set one with the slider.")
        if log:
            self.commit_threshold("image", "back to the model's value")
            self.commit_threshold("pixel", "back to the model's value")

    def _update_actions(self) -> None:
        running, m, s = self._running, self.menus, self.session
        self.toolbar.set_running(running)
        self.toolbar.run_action.setEnabled(self.model is not None and self.image_set is not None)
        can_save = self.model is not None and not running
        self.threshold_panel.save_button.setEnabled(can_save)
        m.save_threshold_action.setEnabled(can_save)
        blocker = self.resume_blocker()
        m.resume_action.setEnabled(not blocker)
        self.toolbar_resume_action.setVisible(not blocker)
        m.resume_action.setToolTip(blocker or "Score the images this run has not done yet")
        m.export_action.setEnabled(s.path is not None and not running)
        title = s.title()
        self.setWindowTitle(f"{TITLE} — {title}" if title else TITLE)
        self.run_file_label.setText(f"Run: {title}" if title else "")
        self.run_file_label.setToolTip(str(s.path) if s.path else "")

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
            elif path.suffix.lower() == RUN_SUFFIX:
                self.open_run(path)
            elif path.is_file():
                self.open_model(path)
        event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Cancel runs, training and exports, wait for their threads, then close the run file."""
        self.view.flush_timer.stop()
        save_window_state(self)
        self.controller.shutdown()
        self.dialogs.shutdown()
        self.threshold_panel.commit_pending()
        self.session.close()
        if self.demo_loader is not None:
            self.demo_loader.stop()
        self._running = False
        if self._box is not None:
            self._box.close()
        super().closeEvent(event)
