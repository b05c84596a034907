"""The results list: filter buttons, file-name search and the table view."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .results_model import COL_FILE, COL_NORM, COL_SCORE, COL_VERDICT, ResultsTableModel
from .results_view import ResultsDelegate, ResultsView

_FILTER_BUTTONS = (
    ("all", "All", "Every scored image"),
    ("ng", "NG", "Images with score > threshold"),
    ("ok", "OK", "Images with score ≤ threshold (≤ the review start when the review band is on)"),
    ("review", "REVIEW", "Images in the review band (review start < score ≤ threshold): a person decides"),
    ("errors", "Errors", "Images that could not be read"),
    ("fp", "False pos.", "Good images judged NG (needs ground truth)"),
    ("fn", "False neg.", "Defective images judged OK (needs ground truth)"),
)
_REVIEW_CHOICES = (
    ("any", "Review: all"),
    ("unreviewed", "Unreviewed"),
    ("reviewed", "Reviewed"),
    ("op_ok", "Operator OK"),
    ("op_ng", "Operator NG"),
)


#: Room beside a number in its column (the style's text margins and the sort arrow's gap).
NUMBER_PAD = 22
#: Room beside a verdict word: its marker dot, the gap and the text margins.
VERDICT_MARKER_PAD = 32


class ResultsPanel(QWidget):
    """Owns the table view; emits ``image_selected(image_index)`` for the current row."""

    image_selected = Signal(int)
    #: the filters hide every scored image: why, for the image pane (never a hidden image).
    nothing_shown = Signal(str)

    def __init__(self, model: ResultsTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)

        head = QHBoxLayout()
        title = QLabel("Results")
        title.setObjectName("sectionTitle")
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.count_label)
        lay.addLayout(head)

        lay.addLayout(self._build_filters())

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search file names…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        # Typing 100k-row searches on every key is fine (a few ms) but a short pause
        # keeps the selection from jumping around while the name is typed.
        self._search_timer = QTimer(self, singleShot=True, interval=150)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.review_combo = QComboBox()
        for kind, text in _REVIEW_CHOICES:
            self.review_combo.addItem(text, kind)
        self.review_combo.setToolTip("Show images by the operator's review (mark the selected image with O / N)")
        self.review_combo.currentIndexChanged.connect(
            lambda _i: self.set_review_filter(str(self.review_combo.currentData()))
        )
        srow = QHBoxLayout()
        srow.setSpacing(4)
        srow.addWidget(self.search, 1)
        srow.addWidget(self.review_combo)
        lay.addLayout(srow)

        self.view = ResultsView()
        self.view.setModel(model)
        # Paints the cells straight from the model's columns (the same look): see results_view.
        self.view.setItemDelegate(ResultsDelegate(model, self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Arrival order until the user clicks a header (indicator first: enabling
        # sorting sorts by the indicator's column at once).
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideLeft)  # file names: the folder part goes first
        vh = self.view.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(22)
        hh = self.view.horizontalHeader()
        # Every column can be resized (the window remembers the widths); the last one
        # takes the room left over.
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        hh.setHighlightSections(False)
        for col, width in ((0, 230), (1, 70), (2, 58), (3, 62), (4, 62), (5, 58)):
            hh.resizeSection(col, width)
        #: Narrowest width of each number column: its widest number (never elided).
        self._number_widths: dict[int, int] = {}
        hh.sectionResized.connect(self._keep_numbers_whole)
        lay.addWidget(self.view, 1)

        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        for sig in (model.modelReset, model.rowsInserted, model.layoutChanged):
            sig.connect(self.update_count)

    def _build_filters(self) -> QHBoxLayout:
        """The verdict filter buttons (one checked at a time)."""
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        self.filter_group = QButtonGroup(self)
        self.filter_buttons: dict[str, QPushButton] = {}
        for kind, text, tip in _FILTER_BUTTONS:
            b = QPushButton(text)
            b.setObjectName("filter")
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            self.filter_group.addButton(b)
            self.filter_buttons[kind] = b
            buttons.addWidget(b)
            b.clicked.connect(lambda _=False, k=kind: self.set_filter(k))
        buttons.addStretch(1)
        self.filter_buttons["all"].setChecked(True)
        self.filter_buttons["review"].setVisible(False)  # until a review band is on
        return buttons

    # ------------------------------------------------------------------ API
    def set_filter(self, kind: str) -> None:
        """Show one filter (see ``result_table.FILTERS``), keeping the current image if it stays."""
        current = self.current_image()
        self.filter_buttons[kind].setChecked(True)
        self.model.set_filter(kind)
        self.restore_current(current)

    def set_review_filter(self, kind: str) -> None:
        """One of ``result_table.REVIEW_FILTERS``; combined with the verdict filter."""
        current = self.current_image()
        pos = self.review_combo.findData(kind)
        if pos >= 0 and pos != self.review_combo.currentIndex():
            self.review_combo.blockSignals(True)
            self.review_combo.setCurrentIndex(pos)
            self.review_combo.blockSignals(False)
        self.model.set_review_filter(kind)
        self.restore_current(current)

    def reset_filters(self) -> None:
        """Every image again (a new folder): verdict filter All, review any, no search."""
        self._search_timer.stop()
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.model.set_search("")
        self.set_review_filter("any")
        self.set_filter("all")

    def filter_description(self) -> str:
        """The filters in force, in the buttons' words ("" when every image passes)."""
        parts = []
        if self.model.filter_kind != "all":
            parts.append(self.filter_buttons[self.model.filter_kind].text())
        if self.model.review_kind != "any":
            parts.append(self.review_combo.itemText(self.review_combo.findData(self.model.review_kind)))
        if self.search.text():
            parts.append(f'name contains "{self.search.text()}"')
        return ", ".join(parts)

    def restore_current(self, image_index: int) -> None:
        """After the rows changed: keep ``image_index`` current, else the first row.

        The image pane must never show an image the table has filtered out.
        """
        if image_index >= 0 and self.select_image(image_index):
            return
        self.select_row(0)
        self.announce_empty()

    def announce_empty(self) -> None:
        """Emit ``nothing_shown`` when scored images exist but the filters hide them all."""
        st = self.model.store
        if self.model.rowCount() == 0 and st is not None and st.count:
            self.nothing_shown.emit(f"No image passes the filter ({self.filter_description()}).\n"
                                    f"Choose All to see the {st.count:,} scored images.")

    def set_review_band(self, enabled: bool) -> None:
        """The REVIEW filter is offered while a review band is on (else All replaces it)."""
        self.filter_buttons["review"].setVisible(enabled)
        if not enabled and self.model.filter_kind == "review":
            self.set_filter("all")
        if enabled:  # the verdict column fits its longest word, with its marker
            need = self.view.fontMetrics().horizontalAdvance("REVIEW") + VERDICT_MARKER_PAD
            self._number_widths[COL_VERDICT] = need
            hh = self.view.horizontalHeader()
            if hh.sectionSize(COL_VERDICT) < need:
                hh.resizeSection(COL_VERDICT, need)

    def set_ground_truth_filters(self, enabled: bool) -> None:
        """False positive / negative filters only make sense with labels."""
        for kind in ("fp", "fn"):
            self.filter_buttons[kind].setVisible(enabled)
        if not enabled and self.model.filter_kind in ("fp", "fn"):
            self.set_filter("all")

    def current_image(self) -> int:
        """Image index of the current row, or -1."""
        idx = self.view.currentIndex()
        return self.model.image_at(idx.row()) if idx.isValid() else -1

    def select_row(self, row: int) -> None:
        """Make ``row`` current and visible (clamped to the table)."""
        n = self.model.rowCount()
        if n == 0:
            return
        row = min(max(row, 0), n - 1)
        index = self.model.index(row, COL_FILE)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.view.scrollTo(index)

    def select_image(self, image_index: int) -> bool:
        """Select the row showing ``image_index``; False when it is filtered out."""
        row = self.model.row_of(image_index)
        if row >= 0:
            self.select_row(row)
        return row >= 0

    def step(self, delta: int) -> None:
        """Move the current row by ``delta`` (up/down from the image pane)."""
        idx = self.view.currentIndex()
        self.select_row((idx.row() if idx.isValid() else -1) + delta)

    # ------------------------------------------------------------------ internals
    def _apply_search(self) -> None:
        current = self.current_image()
        self.model.set_search(self.search.text())
        self.restore_current(current)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.image_selected.emit(self.model.image_at(current.row()))

    def update_count(self, *_args: object) -> None:
        """"N images", or "k of N shown (filter: ...)" while a filter is on (N: images scored so far)."""
        st = self.model.store
        shown = self.model.rowCount()
        total = st.count if st is not None else 0
        filters = self.filter_description()
        text = f"{shown:,} of {total:,} shown (filter: {filters})" if filters else f"{total:,} images"
        if self.count_label.text() != text:
            self.count_label.setText(text)
        self.fit_number_columns()

    def fit_number_columns(self) -> None:
        """Widen the Score / Norm. columns to their widest number (never shown elided)."""
        st, t = self.model.store, self.model.threshold
        extent = st.finite_score_range() if st is not None and st.count else None  # kept between moves
        if extent is None:
            return
        big = max(abs(extent[0]), abs(extent[1]))
        texts = {COL_SCORE: f"-{big:.3f}" if extent[0] < 0 else f"{big:.3f}"}
        if t > 0 and t != float("inf"):
            texts[COL_NORM] = f"{big / t:.3f}"
        fm = self.view.fontMetrics()
        hh = self.view.horizontalHeader()
        for col, text in texts.items():
            need = fm.horizontalAdvance(text) + NUMBER_PAD
            self._number_widths[col] = need
            if hh.sectionSize(col) < need:
                hh.resizeSection(col, need)

    def _keep_numbers_whole(self, col: int, _old: int, new: int) -> None:
        need = self._number_widths.get(col, 0)
        if new < need:
            self.view.horizontalHeader().resizeSection(col, need)
