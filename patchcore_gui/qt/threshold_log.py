"""The run's threshold log: every change with its time, old and new value and note."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from patchcore_gui.core.run_file import ThresholdChange

_HEADERS = ("Time", "Threshold", "Old", "New", "Note")


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _num(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.6g}"


class ThresholdLogDialog(QDialog):
    """Non-modal list of the open run's threshold changes, newest last."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Threshold log")
        self.resize(720, 320)
        lay = QVBoxLayout(self)
        self.info = QLabel("")
        self.info.setObjectName("muted")
        self.info.setWordWrap(True)
        lay.addWidget(self.info)
        self.table = QTableWidget(0, len(_HEADERS))
        self.table.setHorizontalHeaderLabels(list(_HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(len(_HEADERS) - 1, QHeaderView.ResizeMode.Stretch)
        for col, width in enumerate((150, 80, 80, 80)):
            hh.resizeSection(col, width)
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)

    def set_entries(self, entries: Sequence[ThresholdChange], run_name: str = "") -> None:
        """Show ``entries`` (oldest first) of the run ``run_name``."""
        self.table.setRowCount(len(entries))
        for r, e in enumerate(entries):
            values = (_local(e.time), e.kind, _num(e.old), _num(e.new), e.note)
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        if entries:
            self.table.scrollToBottom()
        if not run_name:
            self.info.setText("No run file is open: threshold changes are logged in a run's file.")
        else:
            self.info.setText(f"{len(entries)} change(s) recorded in {run_name}.")
