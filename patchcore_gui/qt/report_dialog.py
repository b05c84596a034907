"""File > Export report…: where (the extension picks HTML, PDF or CSV), which images, who.

``write_report`` runs in a background thread with progress and cancel; it writes to a
temporary file renamed into place at the end, so a failure or a cancel leaves no
partial report. The operator's name is remembered (QSettings).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QButtonGroup, QLabel, QLineEdit, QRadioButton, QVBoxLayout, QWidget

from .background import one_line
from .file_dialogs import PathField
from .settings import AppSettings
from .task_dialog import TaskDialog

REPORT_FILTER = "HTML report (*.html);;PDF report (*.pdf);;CSV table (*.csv)"
FORMAT_NAMES = {".html": "HTML page", ".htm": "HTML page", ".pdf": "PDF document", ".csv": "CSV table (every image)"}


def describe_failure(exc: BaseException) -> str:
    """One line: the report error's own words, else the exception's first line."""
    from patchcore_gui.reports.context import ReportError

    if isinstance(exc, ReportError):
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else "unknown error"
    elif isinstance(exc, OSError):
        text = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    else:
        text = one_line(exc)
    return f"The report was not written: {text}"


def default_report_path(run_path: Path, folder: str) -> Path:
    """``<run name>-report.html`` in the last report folder, else in Documents (or home).

    Not beside the run file: run files live in the application's data folder, where
    nobody would look for a report.
    """
    if folder and Path(folder).is_dir():
        base = Path(folder)
    else:
        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        base = Path(docs) if docs and Path(docs).is_dir() else Path.home()
    return base / f"{run_path.stem}-report.html"


class ReportDialog(TaskDialog):
    """Scripting: ``set_path``, ``set_include_all``, ``set_operator``, ``start``; signals
    ``task_succeeded(ReportResult)`` / ``task_failed(str)`` / ``task_cancelled``."""

    def __init__(self, run_path: Path, threshold: float, settings: AppSettings,
                 parent: QWidget | None = None, in_run_file: bool = False) -> None:
        super().__init__("Export report", "Export", parent)
        self.run_path = Path(run_path)
        self.threshold = threshold
        #: The run file holds this threshold (and its log): the report tells that story itself.
        self.in_run_file = in_run_file
        self.settings = settings
        self._describe = describe_failure
        self._out = Path()
        self.resize(620, 0)

        run = QLabel(self.run_path.name)
        run.setToolTip(str(self.run_path))
        self.form.addRow("Run", run)
        self.path_field = PathField("save", "Export report", REPORT_FILTER, "report.html / .pdf / .csv")
        self.path_field.set_text(str(default_report_path(self.run_path, settings.report_dir)))
        self.path_field.changed.connect(self._update_format)
        self.form.addRow("Save as", self.path_field)
        self.format_label = QLabel("")
        self.format_label.setObjectName("hint")
        self.form.addRow("", self.format_label)

        scope = QWidget()
        scope_lay = QVBoxLayout(scope)
        scope_lay.setContentsMargins(0, 0, 0, 0)
        scope_lay.setSpacing(2)
        self.flagged_radio = QRadioButton("Flagged (NG) images only")
        self.all_radio = QRadioButton("All images")
        group = QButtonGroup(self)
        for b in (self.flagged_radio, self.all_radio):
            group.addButton(b)
            scope_lay.addWidget(b)
        (self.all_radio if settings.report_include_all else self.flagged_radio).setChecked(True)
        self.form.addRow("Images", scope)

        self.operator_edit = QLineEdit(settings.operator_name)
        self.operator_edit.setPlaceholderText("name printed on the report")
        self.form.addRow("Operator", self.operator_edit)
        thr = f"{threshold:.6g}" if math.isfinite(threshold) else "the run's"
        note = QLabel(f"Verdicts use the current image threshold ({thr}); operator reviews come from the run file.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        self.outer.addWidget(note)  # full width: a form row would wrap it into a narrow column
        self.finish_layout()
        self._update_format()

    # ------------------------------------------------------------------ scripting
    def set_path(self, path: str | Path) -> None:
        self.path_field.set_text(str(path))

    def set_include_all(self, include_all: bool) -> None:
        (self.all_radio if include_all else self.flagged_radio).setChecked(True)

    def set_operator(self, name: str) -> None:
        self.operator_edit.setText(name)

    def start(self) -> bool:
        """Check the form, remember the choices, and write the report in the background."""
        from patchcore_gui.reports.report import report_format, write_report

        text = self.path_field.text()
        if not text:
            return self.refuse("Choose where to save the report.")
        out = Path(text).expanduser()
        try:
            report_format(out)
        except Exception:  # ReportError: unknown extension
            return self.refuse(f"{out.name}: use .html, .pdf or .csv (the extension picks the format).")
        if not out.parent.is_dir():
            return self.refuse(f"The folder {out.parent} does not exist.")
        include_all = self.all_radio.isChecked()
        operator = self.operator_edit.text().strip()
        self.settings.operator_name = operator
        self.settings.report_include_all = include_all
        self.settings.report_dir = str(out.parent)
        run_path = self.run_path
        threshold = self.threshold if math.isfinite(self.threshold) and not self.in_run_file else None

        def job(progress: Any, cancel: threading.Event) -> Any:
            return write_report(
                run_path, out, include_all=include_all, operator=operator, threshold=threshold,
                threshold_given_by="set in the window; the run file, open read-only there, keeps its own",
                progress=lambda done, total: progress("report", done, total), cancel=cancel,
            )

        self._out = out
        return self.run_task(job, "export-report", f"Writing {out.name}…")

    # ------------------------------------------------------------------ texts
    def describe_progress(self, stage: str, done: int, total: int) -> str:
        return f"Rendering images: {done:,} of {total:,}"

    def succeeded_text(self, result: Any) -> str:
        n = getattr(result, "images", None)
        note = getattr(result, "note", "")
        path = getattr(result, "path", self._out)
        text = f"Report written: {path}"
        if n is not None:
            text += f" ({n:,} images)"
        return text + (f". {note}" if note else ".")

    def _update_format(self) -> None:
        ext = Path(self.path_field.text()).suffix.lower()
        self.format_label.setText(
            f"Format: {FORMAT_NAMES[ext]}" if ext in FORMAT_NAMES else "Format: choose .html, .pdf or .csv"
        )
