"""Teach as good, in the window: pick reviewed-OK images, see every verdict that would flip, then save.

Review > Teach as good… (Ctrl+G) lists the images the operator confirmed OK (key O);
those the model does not call OK (false rejects) are ticked. "Re-score the run" teaches
the ticked images into a new model (``core/teach.py``) and re-scores the run's images
with it in the background (``TaskDialog``'s worker); the dialog then lists every
verdict that would flip, with ground truth where known. A real defect that would
become OK, or an image the operator confirmed NG, is marked, so teaching a defect as
good is caught before it costs anything. "Save new model…" writes the new file (the
open model file is never touched; undo = keep using it) and offers to open it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from patchcore_gui.core.result_table import OP_NG, OP_OK
from patchcore_gui.core.verdict import verdict

from .task_dialog import TaskDialog

WARN = QColor(198, 40, 40)


class TeachDialog(TaskDialog):
    """The teach-as-good dialog for one window's open model and run."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None) -> None:
        super().__init__("Teach as good", "Re-score the run", parent or window)
        self.window = window
        self.setMinimumWidth(760)
        self.child: Any = None
        self.report: Any = None
        self.flip_list: list[Any] = []
        doc = window.doc  # type: ignore[attr-defined]
        self.model, self.results, self.image_set = doc.model, doc.results, doc.image_set
        intro = QLabel("Images you confirmed OK join the model's memory bank where they add coverage. "
                       "Nothing is saved until you accept: the run is re-scored first and every verdict "
                       "that would flip is listed. The open model file is never changed.")
        intro.setWordWrap(True)
        self.form.addRow(intro)
        self.images = QListWidget()
        self.images.setMinimumHeight(120)
        # The application style draws no box for an unticked item: both states drawn here.
        self.images.setStyleSheet(
            "QListWidget::indicator { width: 12px; height: 12px; border: 1px solid #8a94a0; border-radius: 2px; }"
            "QListWidget::indicator:checked { background: #4c8bf5; border-color: #4c8bf5; }")
        self.form.addRow("Confirmed OK", self.images)
        self.note = QLineEdit()
        self.note.setPlaceholderText("why (kept in the new model's history)")
        self.form.addRow("Note", self.note)
        self.keep_check = QCheckBox("Keep the model's thresholds")
        self.keep_check.setToolTip("Otherwise they are re-derived from the calibration scores, which the "
                                   "taught images' own scores raise")
        self.form.addRow("", self.keep_check)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outer.addWidget(self.summary)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Image", "Before", "After", "Scores", "Truth"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(160)
        self.table.setVisible(False)
        self.outer.addWidget(self.table, 1)
        self.save_button = QPushButton("Save new model…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save)
        self.outer.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignRight)
        self.finish_layout()
        self._fill()
        self.task_succeeded.connect(self._show_result)

    def _fill(self) -> None:
        st, m = self.results, self.model
        if st is None or m is None:
            return
        for i in range(len(st.paths)):
            if st.operator[i] != OP_OK or st.errors.get(i):
                continue
            auto = verdict(float(st.scores[i]), m.image_threshold, m.review_from)
            item = QListWidgetItem(f"{st.names[i]}    (score {float(st.scores[i]):.4g}, model: {auto or '-'})")
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if auto != "OK" else Qt.CheckState.Unchecked)
            self.images.addItem(item)

    def chosen(self) -> list[int]:
        """Image indices ticked."""
        out = []
        for k in range(self.images.count()):
            it = self.images.item(k)
            if it.checkState() == Qt.CheckState.Checked:
                out.append(int(it.data(Qt.ItemDataRole.UserRole)))
        return out

    def start(self) -> bool:
        """Teach the ticked images and re-score the run with the new model, in the background."""
        st, m, image_set = self.results, self.model, self.image_set
        if m is None or st is None or image_set is None:
            return self.refuse("Open a model and a run first.")
        idx = self.chosen()
        if not idx:
            return self.refuse("Tick at least one image confirmed OK (review key O).")
        paths = [st.paths[i] for i in idx]
        note = self.note.text().strip()
        keep = self.keep_check.isChecked()
        user = getattr(self.window, "settings", None)
        operator = getattr(user, "operator_name", "") or None
        old_scores = st.scores.astype("float64").copy()
        self.save_button.setEnabled(False)

        def job(progress: Any, cancel: Any) -> Any:
            from patchcore_gui.core.teach import flips, teach

            child, report = teach(m, paths, note=note, user=operator, cancel=cancel, keep_thresholds=keep,
                                  progress=lambda s, d, t: progress(s, d, t))
            changed, _old, new = flips(m, child, image_set, cancel=cancel, old_scores=old_scores,
                                       progress=lambda d, t: progress("re-scoring the run", d, t))
            return child, report, changed, new

        return self.run_task(job, "teach", f"Teaching {len(paths)} image(s) and re-scoring {len(image_set)}…")

    def succeeded_text(self, result: Any) -> str:
        _child, _report, changed, _new = result
        return f"Re-scored: {len(changed)} verdict(s) would flip. Save the new model to keep it."

    def _show_result(self, result: Any) -> None:
        self.child, self.report, self.flip_list, _new = result
        st = self.results
        ops = {} if st is None else {st.paths[i]: int(st.operator[i]) for i in range(len(st.paths))}
        names = {} if st is None else dict(zip(st.paths, st.names, strict=True))
        danger = 0
        self.table.setRowCount(len(self.flip_list))
        for r, f in enumerate(self.flip_list):
            op = ops.get(f.path, 0)
            bad = f.new_verdict == "OK" and (f.truth == "defect" or op == OP_NG)
            danger += bad
            truth = f.truth + (" · operator NG" if op == OP_NG else "")
            cells = [names.get(f.path, os.path.basename(f.path)), f.old_verdict or "-", f.new_verdict or "-",
                     f"{_num(f.old_score)} → {_num(f.new_score)}", truth]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if bad:
                    item.setForeground(WARN)
                item.setToolTip(f.path)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setVisible(True)
        lines = self.report.lines()
        head = f"{len(self.flip_list)} verdict(s) would flip."
        if danger:
            head += f" {danger} would turn a known defect (or an image confirmed NG) OK: check them before saving."
        self.summary.setText(head + "\n" + "\n".join(lines[:2]))
        self.save_button.setEnabled(True)

    def save(self) -> bool:
        """Ask where, write the new model (never over the open one), and offer to open it."""
        if self.child is None:
            return False
        parent_path = Path(self.model.path) if self.model is not None and self.model.path else Path("model.patchcore")
        default = str(parent_path.with_name(parent_path.stem + "-taught.patchcore"))
        path = self.window._ask_save_path(default)  # type: ignore[attr-defined]
        if not path:
            return False
        if self.model is not None and self.model.path and Path(path).resolve() == Path(self.model.path).resolve():
            self.set_status("Choose another file: the open model file is never overwritten.", "error")
            return False
        try:
            self.child.save(path)
        except OSError as exc:
            self.set_status(f"Cannot write {Path(path).name}: {exc.strerror or exc}", "error")
            return False
        self.set_status(f"Saved {Path(path).name}.", "ok")
        self.accept()
        self.window.open_new_model(path)  # type: ignore[attr-defined]
        return True


def _num(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "-"


class TeachAction(QObject):
    """Review > Teach as good… (Ctrl+G) for a ``MainWindow``."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: TeachDialog | None = None
        self.action = QAction("Teach as good…", window)
        self.action.setShortcut("Ctrl+G")
        self.action.setToolTip("Add images confirmed OK to a new model, after seeing which verdicts flip")
        self.action.triggered.connect(self.open)
        for a in window.menuBar().actions():
            if a.text().replace("&", "") == "Review" and a.menu() is not None:
                a.menu().addSeparator()
                a.menu().addAction(self.action)
        window.addAction(self.action)

    def open(self) -> TeachDialog | None:
        """Open the dialog (refused with a reason while a run goes on or nothing is confirmed OK)."""
        doc = self.window.doc  # type: ignore[attr-defined]
        if doc.running:
            self.window.show_error("Teach as good: wait for the run to finish.")  # type: ignore[attr-defined]
            return None
        st = doc.results
        if doc.model is None or st is None or not (st.operator == OP_OK).any():
            self.window.show_error(  # type: ignore[attr-defined]
                "Teach as good: confirm the images you want to teach as OK first (key O).")
            return None
        if self.dialog is not None:
            self.dialog.shutdown()
            self.dialog.deleteLater()
        self.dialog = TeachDialog(self.window)
        self.dialog.show()
        return self.dialog

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.shutdown()


def install_teach(window: QMainWindow) -> TeachAction:
    """Add Review > Teach as good… to ``window`` (a ``MainWindow``)."""
    return TeachAction(window)
