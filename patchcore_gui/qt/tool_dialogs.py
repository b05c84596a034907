"""The window's tool dialogs (train, import, export report, threshold log): created on
demand, one of each, wired back to the window, and shut down with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QInputDialog, QWidget

from .document import InspectionDocument
from .import_dialog import ImportDialog
from .report_dialog import ReportDialog
from .settings import AppSettings
from .task_dialog import TaskDialog
from .threshold_log import ThresholdLogDialog
from .train_dialog import TrainDialog


class ToolDialogs:
    """Holds the open tool dialogs of one window (``parent``).

    ``open_model(path)`` opens a model a dialog made; ``batch_size()`` is the toolbar's.
    """

    def __init__(self, doc: InspectionDocument, settings: AppSettings, parent: QWidget,
                 open_model: Callable[[str], bool], batch_size: Callable[[], int]) -> None:
        self.doc, self.settings, self.parent = doc, settings, parent
        self._open_model, self._batch_size = open_model, batch_size
        self.train: TrainDialog | None = None
        self.importer: ImportDialog | None = None
        self.report: ReportDialog | None = None
        self.threshold_log: ThresholdLogDialog | None = None

    def _show(self, dialog: QDialog) -> None:
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.show()
        dialog.raise_()

    def _fresh(self, old: TaskDialog | None) -> bool:
        """True when ``old`` should be replaced (none, or idle)."""
        if old is None:
            return True
        if old.is_running():
            self._show(old)
            return False
        old.close()
        old.deleteLater()
        return True

    # ------------------------------------------------------------------ dialogs
    def show_train(self) -> TrainDialog:
        if self._fresh(self.train):
            self.train = TrainDialog(batch_size=self._batch_size(), parent=self.parent)
            self.train.task_succeeded.connect(lambda result: self._open_model(result.path))
            self.train.task_failed.connect(lambda msg: self.doc.show_status(msg, 10000))
        assert self.train is not None
        self._show(self.train)
        return self.train

    def show_import(self) -> ImportDialog:
        if self._fresh(self.importer):
            self.importer = ImportDialog(parent=self.parent)
            self.importer.task_succeeded.connect(lambda path: self._open_model(path))
        assert self.importer is not None
        self._show(self.importer)
        return self.importer

    def show_report(self) -> ReportDialog | None:
        """The export dialog for the open run; None (and the reason shown) when there is none."""
        doc = self.doc
        s = doc.session
        if s.path is None:
            why = ("this run's file could not be written" if s.memory_only
                   else "no run is open")
            doc.report_error(f"Export needs a run file, and {why}: run a folder, or open a run (File > Open run…).")
            return None
        if doc.running:
            doc.report_error("Wait for the run to finish, or cancel it, before exporting a report.")
            return None
        doc.flush_edits()  # the report shows the threshold log too
        if not self._fresh(self.report):
            return self.report
        self.report = ReportDialog(Path(s.path), doc.image_threshold, self.settings, parent=self.parent,
                                   in_run_file=doc.image_threshold == doc.logged["image"])

        def written(result: Any) -> None:
            doc.show_status(f"Report written: {getattr(result, 'path', '')}", 15000)

        self.report.task_succeeded.connect(written)
        self._show(self.report)
        return self.report

    def show_threshold_log(self) -> ThresholdLogDialog:
        if self.threshold_log is None:
            self.threshold_log = ThresholdLogDialog(self.parent)
        self.refresh_threshold_log()
        self.threshold_log.show()
        self.threshold_log.raise_()
        return self.threshold_log

    def refresh_threshold_log(self) -> int:
        """Show the run file's threshold log in the dialog if open; returns how many entries."""
        session = self.doc.session
        entries = session.threshold_log()
        if self.threshold_log is not None:
            self.threshold_log.set_entries(entries, session.path.name if session.path else "")
        return len(entries)

    def ask_operator(self) -> None:
        """Review > Operator name… (stored with verdicts, printed on reports)."""
        s = self.settings
        name, ok = QInputDialog.getText(self.parent, "Operator name",
                                        "Name stored with your verdicts and on reports:", text=s.operator_name)
        if ok:
            s.operator_name = name

    # ------------------------------------------------------------------ teardown
    def shutdown(self) -> None:
        """Cancel running jobs, wait for their threads, close every dialog."""
        for d in (self.train, self.importer, self.report):
            if d is not None:
                d.shutdown()
                d.close()
        if self.threshold_log is not None:
            self.threshold_log.close()
