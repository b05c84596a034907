"""The document's signals, shown by the window's panels: one handler per kind of change.

Panels stay plain widgets with setters (each testable on its own); this module is the
one place that decides which panels follow which change of the ``InspectionDocument``,
and in what order (the table is re-filtered before the current row is restored, for
instance).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject

from .document import InspectionDocument
from .run_view import RunView
from .tool_dialogs import ToolDialogs
from .window_layout import WindowWidgets

TITLE = "PatchCore Inspector"


class DocumentBinding(QObject):
    """Keeps the panels in ``ui`` showing ``doc``; ``set_title`` names the window."""

    def __init__(self, doc: InspectionDocument, ui: WindowWidgets, view: RunView, dialogs: ToolDialogs,
                 set_title: Callable[[str], None]) -> None:
        super().__init__(doc)
        self.doc, self.ui, self.view, self.dialogs, self.set_title = doc, ui, view, dialogs, set_title
        doc.model_changed.connect(self.on_model)
        doc.model_info_changed.connect(self.on_model_info)
        doc.folder_changed.connect(self.on_folder)
        doc.results_changed.connect(view.install)
        doc.threshold_changed.connect(self.on_threshold)
        doc.pixel_threshold_changed.connect(self.on_pixel_threshold)
        doc.review_changed.connect(self.on_review)
        # The review band's controls talk to the document here (the window connects the
        # threshold's own); a refused value is a status-bar line.
        tp = ui.threshold_panel
        tp.review_edited.connect(doc.set_review_from)
        tp.review_committed.connect(lambda: doc.commit_threshold("review"))
        tp.refused.connect(lambda text: doc.show_status(text, 8000))
        doc.run_file_changed.connect(self.on_run_file)
        doc.threshold_logged.connect(self.refresh_threshold_log)
        doc.running_changed.connect(self.update_actions)
        doc.flush_requested.connect(ui.threshold_panel.commit_pending)
        self.update_actions()

    def on_model(self) -> None:
        """A new model (or none): its card, new maps in the image pane, live threshold controls."""
        self.on_model_info()
        self.ui.image_pane.set_model(self.doc.model)
        self.ui.threshold_panel.set_enabled(True)
        self.update_actions()

    def on_model_info(self) -> None:
        self.ui.card.set_summary(self.doc.model_summary, self.doc.model_name)

    def on_folder(self) -> None:
        image_set = self.doc.image_set
        if image_set is not None:
            self.ui.toolbar.set_folder(Path(image_set.root), image_set)
        self.ui.results.reset_filters()  # filters chosen for the last folder would hide this one's images
        self.update_actions()

    def on_threshold(self, value: float) -> None:
        """The image threshold moved: verdicts, counts, filter, metrics and overlay follow."""
        ui, doc = self.ui, self.doc
        current = ui.results.current_image()
        ui.table_model.set_threshold(value, doc.review_from)
        if current >= 0 and ui.results.current_image() != current:
            ui.results.restore_current(current)
        ui.results.fit_number_columns()  # Norm. = score / threshold: its widest number changed
        ui.threshold_panel.set_threshold(value)
        self._show_origin()
        self.view.update_counts()
        if doc.results is not None and doc.results.has_labels:
            ui.metrics_panel.set_threshold(value, doc.review_from)
        ui.image_pane.set_thresholds(value, doc.pixel_threshold, doc.review_from)

    def on_review(self, value: float) -> None:
        """The review band's start moved (NaN: off): REVIEW verdicts, counts, filter and matrix follow."""
        ui, doc = self.ui, self.doc
        current = ui.results.current_image()
        ui.table_model.set_threshold(doc.image_threshold, value)
        ui.results.set_review_band(math.isfinite(value))
        if current >= 0 and ui.results.current_image() != current:
            ui.results.restore_current(current)
        ui.threshold_panel.set_review_from(value)
        self._show_origin()
        self.view.update_counts()
        if doc.results is not None and doc.results.has_labels:
            ui.metrics_panel.set_threshold(doc.image_threshold, value)
        ui.image_pane.set_thresholds(doc.image_threshold, doc.pixel_threshold, value)

    def _show_origin(self) -> None:
        """Where the threshold comes from, and the review band when one is on."""
        doc = self.doc
        band = f" · review band from {doc.review_from:.6g}" if math.isfinite(doc.review_from) else ""
        self.ui.threshold_panel.set_origin(f"Threshold {doc.image_threshold:.6g}: {doc.threshold_origin}{band}")

    def on_pixel_threshold(self, value: float) -> None:
        self.ui.threshold_panel.set_pixel_threshold(value)
        self.ui.image_pane.set_thresholds(self.doc.image_threshold, value)

    def on_run_file(self) -> None:
        self.refresh_threshold_log()
        self.update_actions()

    def refresh_threshold_log(self) -> None:
        self.ui.threshold_panel.set_log_count(self.dialogs.refresh_threshold_log())

    def update_actions(self) -> None:
        """What can be done now (run, save, resume, export) and the window's title."""
        doc, ui = self.doc, self.ui
        running, m, s = doc.running, ui.menus, doc.session
        ui.toolbar.set_running(running)
        ui.toolbar.run_action.setEnabled(doc.model is not None and doc.image_set is not None and not running)
        can_save = doc.model is not None and not running
        ui.threshold_panel.save_button.setEnabled(can_save)
        m.save_threshold_action.setEnabled(can_save)
        blocker = doc.resume_blocker()
        m.resume_action.setEnabled(not blocker)
        ui.toolbar_resume_action.setVisible(not blocker)
        m.resume_action.setToolTip(blocker or "Score the images this run has not done yet")
        m.export_action.setEnabled(s.path is not None and not running)
        title = s.title()
        self.set_title(f"{TITLE} — {title}" if title else TITLE)
        ui.run_file_label.setText(f"Run: {title}" if title else "")
        ui.run_file_label.setToolTip(str(s.path) if s.path else "")

