"""The main window: one ``InspectionDocument``, the panels that show it, and the wiring between them.

The document (``document.py``) holds what is inspected; the helpers change it (runs:
``run_actions``, run files: ``run_files``, review: ``review``, saving thresholds:
``model_thresholds``, tool dialogs: ``tool_dialogs``); the window connects the
document's signals to the panels (``window_binding``) and the controls' signals to
the document and the helpers (``_connect``).

Scripting surface (tests, automation): ``open_model``, ``open_folder``, ``open_run``,
``start_run``, ``resume_run``, ``cancel_run``, ``set_threshold`` / ``commit_threshold``,
``mark_current``, ``dialogs.show_train`` / ``show_import`` / ``show_report``; signals
``run_finished`` and ``threshold_changed``; ``doc`` and, read-only, ``model``,
``image_set``, ``store``, ``threshold``, ``pixel_threshold``, ``threshold_origin``,
``session``. Every error for the user goes through ``show_error`` (``last_error``,
non-modal box).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox

from patchcore_gui.core.datasets import ImageSet, scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError
from patchcore_gui.core.result_table import ResultTable

from . import file_dialogs, review
from .document import InspectionDocument
from .drift_banner import DriftMonitor
from .evidence_view import install_evidence
from .image_pane import ImageInfo
from .model_thresholds import save_threshold_as
from .run_actions import RunActions
from .run_controller import RunController
from .run_files import RunFiles
from .run_session import RUN_SUFFIX, RunSession
from .run_view import RunView
from .settings import AppSettings
from .teach_dialog import install_teach
from .tool_dialogs import ToolDialogs
from .window_binding import TITLE, DocumentBinding
from .window_layout import build_layout
from .window_state import restore_splitters, restore_window_state, save_window_state


class MainWindow(QMainWindow):
    """PatchCore Inspector's window."""

    #: cancelled (True when stopped early); emitted after the last rows are shown.
    run_finished = Signal(bool)
    threshold_changed = Signal(float)

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.doc = InspectionDocument(self)
        self.last_error = ""
        self._box: QMessageBox | None = None
        #: ``confirm(title, question) -> bool``: asks before work is thrown away (tests replace it).
        self.confirm: Callable[[str, str], bool] = self._ask_yes_no
        #: set by ``startup.start_demo`` while the demo is prepared (a ``DemoLoader``).
        self.demo_loader: Any = None
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.ui = build_layout(self, self.settings)
        ui = self.ui
        # The panels by name, for scripts and tests (``ui`` holds the same objects).
        self.toolbar, self.menus, self.toolbar_resume_action = ui.toolbar, ui.menus, ui.toolbar_resume_action
        self.table_model, self.results, self.image_pane = ui.table_model, ui.results, ui.image_pane
        self.card, self.threshold_panel, self.metrics_panel = ui.card, ui.threshold_panel, ui.metrics_panel
        self.splitter, self.right_splitter = ui.splitter, ui.right_splitter
        self.run_status, self.run_file_label = ui.run_status, ui.run_file_label
        self.controller = RunController(self)
        self.view = RunView(self.doc, ui)
        # The drift banner follows the results live (core/drift.py).
        self.drift = DriftMonitor(self.doc, ui.drift_banner)
        self.runs = RunActions(self.doc, ui, self.settings, self.controller, self.view,
                               lambda title, text: self.confirm(title, text))
        self.run_files = RunFiles(self.doc, self.settings, self.runs, self.view, ui.toolbar)
        self.dialogs = ToolDialogs(self.doc, self.settings, self, self.open_new_model, ui.toolbar.batch_spin.value)
        self.doc.error.connect(self.show_error)
        self.doc.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.doc.threshold_changed.connect(self.threshold_changed)
        self.runs.finished.connect(self.run_finished)
        self.binding = DocumentBinding(self.doc, ui, self.view, self.dialogs, self.setWindowTitle)
        self._connect()
        self.evidence, self.teach = install_evidence(self), install_teach(self)  # issue 14
        restore_window_state(self, ui, self.settings)
        self._shown_once = False

    def _connect(self) -> None:
        """The controls' signals to the document and the helpers."""
        ui, doc = self.ui, self.doc
        tb, m, tp = ui.toolbar, ui.menus, ui.threshold_panel
        tb.open_model_action.triggered.connect(self._ask_open_model)
        tb.open_folder_action.triggered.connect(self._ask_open_folder)
        tb.recent_chosen.connect(lambda k, p: self.open_model(p) if k == "models" else self.open_folder(p))
        tb.run_action.triggered.connect(self.start_run)
        tb.cancel_action.triggered.connect(self.cancel_run)
        m.open_run_action.triggered.connect(lambda: self.run_files.ask_open_run(self))
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
            action.triggered.connect(lambda _=False, k=kind: ui.results.set_review_filter(k))
        m.overlay_action.triggered.connect(ui.image_pane.toggle_overlay)
        m.fit_action.triggered.connect(ui.image_pane.fit)
        m.find_action.triggered.connect(ui.results.search.setFocus)
        self.controller.batch_ready.connect(self.view.on_batch)
        self.controller.progressed.connect(self.view.on_progress)
        ui.results.image_selected.connect(self._show_image)
        ui.results.nothing_shown.connect(ui.image_pane.clear)
        ui.image_pane.step_requested.connect(ui.results.step)
        tp.threshold_edited.connect(lambda v: doc.set_image_threshold(v, "set by hand"))
        tp.threshold_committed.connect(lambda: doc.commit_threshold("image"))
        tp.pixel_threshold_edited.connect(doc.set_pixel_threshold)
        tp.pixel_threshold_committed.connect(lambda: doc.commit_threshold("pixel"))
        tp.reset_requested.connect(lambda: self._reset_thresholds(log=True))
        tp.save_requested.connect(self.save_threshold)
        tp.log_requested.connect(self.dialogs.show_threshold_log)
        ui.metrics_panel.threshold_proposed.connect(lambda v, why: doc.set_image_threshold(v, why, log=True))

    # ------------------------------------------------------------------ the document, read-only
    @property
    def model(self) -> PatchCoreModel | None:
        return self.doc.model

    @property
    def image_set(self) -> ImageSet | None:
        return self.doc.image_set

    @property
    def store(self) -> ResultTable | None:
        """The results shown (the document's ``ResultTable``)."""
        return self.doc.results

    @property
    def threshold(self) -> float:
        """The image threshold."""
        return self.doc.image_threshold

    @property
    def pixel_threshold(self) -> float:
        return self.doc.pixel_threshold

    @property
    def threshold_origin(self) -> str:
        return self.doc.threshold_origin

    @property
    def session(self) -> RunSession:
        """The open run file (through which every write to it goes)."""
        return self.doc.session

    # ------------------------------------------------------------------ scripting surface
    def open_model(self, path: str | os.PathLike[str]) -> bool:
        """Load a model file; an unusable one is reported in one sentence."""
        try:
            model = PatchCoreModel.load(path, device="cpu")
        except ModelFileError as exc:
            self.show_error(str(exc))
            return False
        except OSError as exc:
            self.show_error(f"{Path(path).name}: cannot be read ({exc.strerror or exc}).")
            return False
        if not self.runs.confirm_stop("opening another model"):
            return False
        self.runs.stop_for_change()
        self.settings.add_recent("models", path)
        self.settings.last_opened = path
        self.doc.set_model(model, Path(path).name, model.summary())
        self._reset_results()
        self._reset_thresholds()
        self.statusBar().showMessage(f"Model {Path(path).name} loaded", 5000)
        return True

    def open_folder(self, path: str | os.PathLike[str]) -> bool:
        """Scan a folder recursively (MVTec ground truth detected) and show its image count."""
        try:
            image_set = scan_folder(path)
        except (OSError, ValueError) as exc:
            self.show_error(f"Cannot open the folder: {exc}")
            return False
        if len(image_set) == 0:
            self.show_error(f"No images found in {path} (looked for PNG, JPEG, BMP and TIFF, recursively).")
            return False
        if not self.runs.confirm_stop("opening another folder"):
            return False
        self.runs.stop_for_change()
        self.settings.add_recent("folders", path)
        self.doc.set_folder(image_set)
        self._reset_results()
        self._carry_threshold()
        return True

    def open_new_model(self, path: str | os.PathLike[str]) -> bool:
        """A model the train / import dialog just wrote: open it, asking first when that throws work away."""
        st, name = self.doc.results, Path(path).name
        if self.doc.running or (st is not None and st.count):
            where = self.doc.session.path
            kept = (f" They stay in the run file {where.name} (File > Open run shows them again)."
                    if where is not None and not self.doc.session.write_error else " They are not saved.")
            shown = f"{st.count:,} results" if st is not None else "The results"
            question = (f"{name} is saved. Opening it replaces the open model and clears the {shown} on screen."
                        f"{kept}\n\nOpen the new model now?")
            if not self.confirm("Open the new model?", question):
                self.statusBar().showMessage(f"Model saved: {path} (not opened: the results on screen stay)", 15000)
                return False
        return self.open_model(path)

    def open_run(self, path: str | os.PathLike[str]) -> bool:
        """Show a saved run again (read-only, with the reason, when another window writes it)."""
        return self.run_files.open_run(path)

    def start_run(self) -> bool:
        """Score every image of the open folder with the open model, into a new run file."""
        return self.runs.start()

    def resume_run(self) -> bool:
        """Score the images the open run has not done yet, in the run's own batch size."""
        return self.runs.resume()

    def resume_blocker(self) -> str:
        """Why the open run cannot be resumed now ("" when it can)."""
        return self.doc.resume_blocker()

    def cancel_run(self) -> None:
        """Stop after the batch in flight; what was scored stays (and can be resumed)."""
        self.runs.cancel()

    def set_threshold(self, value: float, origin: str = "set by hand", log: bool = False) -> None:
        """Move the image threshold: verdicts, counts, filter, metrics and overlay follow.

        ``log``: record the change in the run file now (otherwise the threshold panel
        commits it when the user lets go of the slider / line or enters a number).
        """
        self.doc.set_image_threshold(value, origin, log)

    def set_pixel_threshold(self, value: float) -> None:
        """Anomaly-map level outlined as the defect region (and the heatmap's mid colour)."""
        self.doc.set_pixel_threshold(value)

    def commit_threshold(self, kind: str = "image", note: str = "") -> bool:
        """Record the current image (or pixel) threshold in the run's log if it changed."""
        return self.doc.commit_threshold(kind, note)

    def mark_current(self, verdict: str) -> bool:
        """O / N: confirm the selected image OK / NG (again: clear), then go to the next one."""
        return review.mark_current(self.doc, self.results, verdict, self.settings.operator_name)

    def save_threshold(self) -> bool:
        """Write a NEW model file carrying the current thresholds (never the open file)."""
        return save_threshold_as(self.doc, self.settings, lambda default: self._ask_save_path(default))

    def is_running(self) -> bool:
        return self.doc.running

    def show_error(self, text: str) -> None:
        """Every error reaches the user here: status bar + a non-modal message box."""
        self.last_error = text
        self.statusBar().showMessage(text, 15000)
        self._box = file_dialogs.show_warning(self, text, self._box)

    # ------------------------------------------------------------------ helpers
    def _reset_results(self) -> None:
        """An empty result set for the open folder; the previous run file is closed."""
        self.doc.new_results()

    def _carry_threshold(self) -> None:
        """A new folder starts from the model's thresholds unless the user chose to keep the current one."""
        doc = self.doc
        if self.threshold_panel.keep_check.isChecked() and doc.model is not None:
            # Named by value: the previous folder's run file does not belong to this folder.
            doc.set_image_threshold(doc.image_threshold, f"kept from the previous folder ({doc.image_threshold:.6g})")
        else:
            self._reset_thresholds()

    def _ask_yes_no(self, title: str, text: str) -> bool:
        """A modal Yes / No question; No is the default (Enter keeps the work)."""
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        return QMessageBox.question(self, title, text, buttons, QMessageBox.StandardButton.No) == (
            QMessageBox.StandardButton.Yes)

    def _reset_thresholds(self, log: bool = False) -> None:
        if self.doc.model is not None and not self.doc.reset_thresholds(log):
            self.threshold_panel.set_origin("The model has no threshold: set one with the slider.")

    def _show_image(self, index: int) -> None:
        st = self.doc.results
        if st is None or index < 0:
            return
        mask = st.mask_paths[index]
        self.image_pane.show_image(ImageInfo(
            key=self.doc.run_key, index=index, path=st.paths[index], name=st.names[index],
            score=float(st.scores[index]), grid=st.grid(index), truth=st.truth(index),
            mask_path=os.fspath(mask) if mask is not None else None, error=st.errors.get(index, ""),
        ))

    def _ask_open_model(self) -> None:
        path = file_dialogs.ask_model_path(self, self.settings.recent("models"))
        if path:
            self.open_model(path)

    def _ask_open_folder(self) -> None:
        path = file_dialogs.ask_folder(self, self.settings.recent("folders"))
        if path:
            self.open_folder(path)

    def _ask_save_path(self, default: str) -> str:
        """Where to save a model (tests replace this method)."""
        return file_dialogs.ask_save_path(self, default)

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # Qt override
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.is_dir():
                self.open_folder(path)
            elif path.suffix.lower() == RUN_SUFFIX:
                self.open_run(path)
            elif path.is_file():
                self.open_model(path)
        event.acceptProposedAction()

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        super().showEvent(event)
        if not self._shown_once:  # the remembered splitter sizes, now that the width is known
            self._shown_once = True
            # After the first layout pass: one before it would be squeezed to the default width.
            QTimer.singleShot(0, self, lambda: restore_splitters(self.ui, self.settings))

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        """Ask when a run goes on; then cancel runs, training and exports, wait for them, close the run file."""
        if not self.runs.confirm_stop("closing the window"):
            event.ignore()
            return
        save_window_state(self, self.ui, self.settings)
        self.runs.shutdown()
        self.dialogs.shutdown()
        self.evidence.shutdown()
        self.teach.shutdown()
        self.doc.close_run_file()
        if self.demo_loader is not None:
            self.demo_loader.stop()
        if self._box is not None:
            self._box.close()
        super().closeEvent(event)
