"""The results table paints its cells itself: the pixels must be the ones Qt's own path draws."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QStyledItemDelegate, QWidget

from patchcore_gui.core.result_table import OP_NG, OP_OK, ResultTable
from patchcore_gui.qt.results_model import (
    COL_FILE,
    COL_NORM,
    COL_OPERATOR,
    COL_SCORE,
    COL_VERDICT,
    ResultsTableModel,
)
from patchcore_gui.qt.results_panel import ResultsPanel
from patchcore_gui.qt.results_view import ResultsDelegate

N = 3000


def pixels(widget: QWidget) -> np.ndarray:
    """(H, W, 3) RGB of a fresh render of ``widget``."""
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * img.height())
    rows = buf.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    return rows.reshape(img.height(), img.width(), 3).copy()


@pytest.fixture
def panel(qtbot: object, synthetic: Callable) -> Iterator[ResultsPanel]:
    """A shown results panel over ``N`` synthetic results (errors, both labels), threshold 6."""
    image_set, scores, grids, errors = synthetic(N)
    store = ResultTable(image_set)
    model = ResultsTableModel()
    model.set_store(store)
    model.set_threshold(6.0)
    store.add(np.arange(N), scores, grids, errors)
    model.publish()
    p = ResultsPanel(model)
    qtbot.addWidget(p)  # type: ignore[attr-defined]
    p.resize(480, 700)
    p.show()
    qtbot.waitExposed(p)  # type: ignore[attr-defined]
    p.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
    p.select_row(3)
    yield p


def qt_and_own(panel: ResultsPanel) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The viewport painted by QTableView + QStyledItemDelegate, then by the results view."""
    view = panel.view
    own = view.itemDelegate()
    assert isinstance(own, ResultsDelegate)
    before = dict(own.counts)
    view.setItemDelegate(QStyledItemDelegate(view))
    reference = pixels(view.viewport())
    view.setItemDelegate(own)
    got = pixels(view.viewport())
    return reference, got, {k: own.counts[k] - before[k] for k in before}


def assert_same_pixels(panel: ResultsPanel, path: str = "view") -> None:
    reference, got, ran = qt_and_own(panel)
    assert ran[path] > 0, ran  # the own painting ran (the comparison is not Qt against itself)
    assert reference.std() > 10  # rows are on screen
    differ = np.argwhere((reference != got).any(axis=2))
    assert len(differ) == 0, f"{len(differ)} pixels differ, first at (y, x) {differ[:3].tolist()}"


def test_cells_look_as_qt_draws_them(panel: ResultsPanel) -> None:
    assert_same_pixels(panel)  # OK / NG verdict tints and markers, a selected row


def test_error_rows_operator_marks_and_focus_look_as_qt_draws_them(panel: ResultsPanel) -> None:
    model, store = panel.model, panel.model.store
    assert store is not None
    panel.set_filter("errors")  # "—" scores, the error marker and tint
    assert_same_pixels(panel)
    panel.set_filter("all")
    store.operator[model.rows[:4]] = [OP_OK, OP_NG, OP_OK, OP_NG]
    panel.view.sortByColumn(COL_OPERATOR, Qt.SortOrder.DescendingOrder)  # "✓ OK" / "✓ NG" on screen
    panel.select_row(1)
    panel.view.setFocus()
    QApplication.processEvents()
    assert_same_pixels(panel)  # the focused current cell is drawn by Qt's path


def test_narrow_columns_scrolling_and_disabled_look_as_qt_draws_them(panel: ResultsPanel) -> None:
    view = panel.view
    view.horizontalHeader().setSectionResizeMode(COL_FILE, view.horizontalHeader().ResizeMode.Interactive)
    for width in (70, 110):  # names shortened from the left (folder first) to different lengths
        view.setColumnWidth(COL_FILE, width)
        QApplication.processEvents()  # the stretched last column follows in the next layout pass
        assert_same_pixels(panel)
    view.verticalScrollBar().setValue(500)
    view.scroll(0, 0)
    view.verticalScrollBar().setValue(view.verticalScrollBar().value() + 7)  # a row cut at the top
    assert_same_pixels(panel)
    view.setEnabled(False)
    assert_same_pixels(panel)


def test_with_a_grid_cells_go_through_the_delegate_and_look_the_same(panel: ResultsPanel) -> None:
    panel.view.setShowGrid(True)  # not covered by the whole-view painting: Qt's loop, our cells
    assert_same_pixels(panel, path="cell")


class PaintRegions(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.rects: list[QRect] = []

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.Paint:
            self.rects.extend(event.region())  # type: ignore[attr-defined]
        return False


def test_threshold_move_repaints_the_changed_columns_and_offscreen_rows_follow(panel: ResultsPanel) -> None:
    view, model = panel.view, panel.model
    QApplication.processEvents()
    spy = PaintRegions()
    view.viewport().installEventFilter(spy)
    model.set_threshold(3.0)  # every row's normalised score and many verdicts change
    QApplication.processEvents()
    view.viewport().removeEventFilter(spy)
    left = view.columnViewportPosition(COL_NORM)
    right = view.columnViewportPosition(COL_VERDICT) + view.columnWidth(COL_VERDICT)
    assert spy.rects
    assert all(r.left() >= left and r.right() <= right for r in spy.rects), (left, right, spy.rects)
    # Rows that were off screen are painted with the new threshold once scrolled to.
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum() // 2)
    QApplication.processEvents()
    row = view.rowAt(5)
    expected = "NG" if model.store.scores[model.image_at(row)] > 3.0 else "OK"
    assert model.data(model.index(row, COL_VERDICT)) == expected
    assert_same_pixels(panel)
