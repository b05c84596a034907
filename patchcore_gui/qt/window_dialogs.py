"""The window's tool dialogs (train, import, export report, threshold log): created on
demand, one of each, wired back to the window, and shut down with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QInputDialog

from .import_dialog import ImportDialog
from .report_dialog import ReportDialog
from .task_dialog import TaskDialog
from .threshold_log import ThresholdLogDialog
from .train_dialog import TrainDialog

if TYPE_CHECKING:
    from .main_window import MainWindow


class WindowDialogs:
    """Holds the open dialogs of one window."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
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
        w = self.window
        if self._fresh(self.train):
            self.train = TrainDialog(batch_size=w.toolbar.batch_spin.value(), parent=w)
            self.train.task_succeeded.connect(lambda path: w.open_model(path))
            self.train.task_failed.connect(lambda msg: w.statusBar().showMessage(msg, 10000))
        assert self.train is not None
        self._show(self.train)
        return self.train

    def show_import(self) -> ImportDialog:
        w = self.window
        if self._fresh(self.importer):
            self.importer = ImportDialog(parent=w)
            self.importer.task_succeeded.connect(lambda path: w.open_model(path))
        assert self.importer is not None
        self._show(self.importer)
        return self.importer

    def show_report(self) -> ReportDialog | None:
        """The export dialog for the open run; None (and the reason shown) when there is none."""
        w = self.window
        s = w.session
        if s.path is None:
            why = ("this run's file could not be written" if s.memory_only
                   else "no run is open")
            w._show_error(f"Export needs a run file, and {why}: run a folder, or open a run (File > Open run…).")
            return None
        if w.is_running():
            w._show_error("Wait for the run to finish, or cancel it, before exporting a report.")
            return None
        w.threshold_panel.commit_pending()  # the report shows the threshold log too
        if not self._fresh(self.report):
            return self.report
        self.report = ReportDialog(Path(s.path), w.threshold, w.settings, parent=w)

        def written(result: Any) -> None:
            w.statusBar().showMessage(f"Report written: {getattr(result, 'path', '')}", 15000)

        self.report.task_succeeded.connect(written)
        self._show(self.report)
        return self.report

    def show_threshold_log(self) -> ThresholdLogDialog:
        w = self.window
        if self.threshold_log is None:
            self.threshold_log = ThresholdLogDialog(w)
        self.refresh_threshold_log()
        self.threshold_log.show()
        self.threshold_log.raise_()
        return self.threshold_log

    def refresh_threshold_log(self) -> None:
        w = self.window
        entries = w.session.threshold_log()
        w.threshold_panel.set_log_count(len(entries))
        if self.threshold_log is not None:
            self.threshold_log.set_entries(entries, w.session.path.name if w.session.path else "")

    def ask_operator(self) -> None:
        """Review > Operator name… (stored with verdicts, printed on reports)."""
        s = self.window.settings
        name, ok = QInputDialog.getText(self.window, "Operator name",
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
