"""The results table view: paints its cells straight from the model's columns.

A threshold move repaints every visible row (the verdict and normalised score change
on each, and under a verdict filter the rows themselves change). Qt's own path costs,
per cell, one Python call for the model index, one for the flags, seven ``data()``
calls (one per role) and, in the style, two text layouts (one to elide, one to draw):
~20 ms per repaint of ~200 cells, half of a 100k-result threshold move on the 2-core
machine. Here one Python call paints the whole exposed region: each cell's text,
colours and marker come from ``ResultsTableModel.cell`` and each distinct text is laid
out once (``QStaticText``). The pixels are the ones Qt draws (a test compares them):
the row and selection fills, the marker and text positions are those of the style
(its layout is asked once per column size). What this does not cover (the focused
cell's frame, a grid, moved or hidden sections, right-to-left) Qt draws as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QFontMetricsF,
    QIcon,
    QPainter,
    QPaintEvent,
    QPalette,
    QRegion,
    QStaticText,
    QTransform,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QWidget

from .results_model import ALIGNMENTS, COL_FILE, Cell, ResultsTableModel

Index = QModelIndex | QPersistentModelIndex
_State = QStyle.StateFlag
# Plain ints and prebuilt values: a Python enum operation costs microseconds, per cell.
_OWN_STATES = (_State.State_HasFocus | _State.State_Editing).value  # drawn by Qt (focus frame)
_ENABLED = _State.State_Enabled.value
_ACTIVE = _State.State_Active.value
_SELECTED = _State.State_Selected.value
_ALIGN_RIGHT = Qt.AlignmentFlag.AlignRight.value
_ALIGN_HCENTER = Qt.AlignmentFlag.AlignHCenter.value
_ELIDE = Qt.TextElideMode.ElideMiddle
#: File names lose their folder part first (the left end): two files differing in their
#: last digits never read alike. Other columns (numbers, words) are sized to their text
#: and never shortened: "19…40" for 195.140 would read as another number.
_FILE_ELIDE = Qt.TextElideMode.ElideLeft
_CENTER = Qt.AlignmentFlag.AlignCenter
_GROUP = QPalette.ColorGroup
_NORMAL, _INACTIVE, _DISABLED = _GROUP.Normal, _GROUP.Inactive, _GROUP.Disabled
_ROLE = QPalette.ColorRole
_ALTERNATE = QStyleOptionViewItem.ViewItemFeature.Alternate
_WRAP = QStyleOptionViewItem.ViewItemFeature.WrapText


@dataclass(frozen=True)
class _PaintPass:
    """What one ``paint_view`` pass knows for every row it paints."""

    view: QTableView
    base: QStyleOptionViewItem
    #: (x in the viewport, width) per visual column.
    cols: list[tuple[int, int]]
    #: Selected ranges as (top, bottom, left, right).
    ranges: list[tuple[int, int, int, int]]
    #: (row, column) drawn through Qt's own path (the focus frame), or None.
    focus_cell: tuple[int, int] | None
    highlight: QBrush
    alternate: QBrush | None
    #: Text, highlighted text and highlight colours of the pass's colour group.
    colors: tuple[QColor, QColor, QBrush]
    icon_mode: QIcon.Mode
    cell_highlight: bool
#: Laid-out texts kept (scores, names... of the rows seen); cleared beyond this.
TEXT_CACHE_SIZE = 20_000
#: (text colour, selected text colour, selection brush) of one colour group.
Colors = tuple[QColor, QColor, QBrush]


class ResultsView(QTableView):
    """The results table (use with ``ResultsDelegate``): fast repaints, the standard look."""

    def dataChanged(  # Qt override
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        # A threshold move changes the verdict and normalised score of every row. Given a
        # range taller than the viewport Qt repaints all of it, every column; clamped to
        # the rows on screen it repaints just the changed columns. Rows scrolled into
        # view later are painted from the model then.
        model = self.model()
        many = top_left.isValid() and bottom_right.isValid() and top_left.row() < bottom_right.row()
        if model is not None and many:
            first = max(self.rowAt(0), top_left.row())
            bottom = self.rowAt(self.viewport().height() - 1)
            last = min(bottom if bottom >= 0 else model.rowCount() - 1, bottom_right.row())
            if first > last:
                return  # none of the changed rows is on screen
            top_left = model.index(first, top_left.column())
            bottom_right = model.index(last, bottom_right.column())
        super().dataChanged(top_left, bottom_right, list(roles))

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        delegate = self.itemDelegate()
        if not (isinstance(delegate, ResultsDelegate) and delegate.paint_view(self, event.region())):
            super().paintEvent(event)


class ResultsDelegate(QStyledItemDelegate):
    """Draws ``ResultsTableModel`` cells from one model call each (the same pixels as Qt's)."""

    def __init__(self, model: ResultsTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        #: (column, width, height, has marker) -> (marker rect, text x, y, w, h), relative to the cell.
        self._layouts: dict[tuple[int, int, int, bool], tuple[QRect, tuple[int, int, int, int]]] = {}
        #: text -> (laid-out text, natural width, advance, line height) in ``_font``.
        self._texts: dict[str, tuple[QStaticText, float, float, int]] = {}
        #: (text, width) -> the text middle-elided to that width.
        self._elisions: dict[tuple[str, int], str] = {}
        self._font = QFont()
        self._metrics = QFontMetricsF(self._font)
        #: How often each path ran (probes for tests): whole passes, single cells, Qt's own.
        self.counts = {"view": 0, "cell": 0, "standard": 0}

    # ------------------------------------------------------------------ whole view
    def paint_view(self, view: QTableView, region: QRegion) -> bool:
        """Paint the cells of ``view`` in ``region`` as QTableView does; False: not handled.

        Follows ``QTableView::paintEvent`` / ``drawCell`` for the table the results panel
        sets up, under the app's style (no ``::item`` style-sheet rules); anything else (a
        grid, word wrap, another elide mode, moved or hidden sections, right-to-left, a
        style that does not fill selected rows) is left to QTableView. No spans are set.
        """
        model = self._model
        hh, vh = view.horizontalHeader(), view.verticalHeader()
        if (
            view.model() is not model or view.showGrid() or view.isRightToLeft()
            or view.wordWrap() or view.textElideMode() != _FILE_ELIDE
            or hh.sectionsMoved() or hh.sectionsHidden() or vh.sectionsMoved() or vh.sectionsHidden()
        ):
            return False
        base = QStyleOptionViewItem()
        view.initViewItemOption(base)
        style = view.style()
        if not style.styleHint(QStyle.StyleHint.SH_ItemView_ShowDecorationSelected, base, view):
            return False
        n_rows, n_cols = vh.count(), hh.count()
        self.counts["view"] += 1
        if n_rows == 0 or n_cols == 0:
            return True
        state = base.state.value
        group = (_NORMAL if state & _ACTIVE else _INACTIVE) if view.isEnabled() else _DISABLED
        palette = base.palette
        highlight = palette.brush(group, _ROLE.Highlight)
        colors = (palette.color(group, _ROLE.Text), palette.color(group, _ROLE.HighlightedText), highlight)
        alternate = palette.brush(group, _ROLE.AlternateBase) if view.alternatingRowColors() else None
        icon_mode = QIcon.Mode.Disabled if group == _DISABLED else QIcon.Mode.Normal
        self._use_font(base.font)
        selection = view.selectionModel()
        picks = selection.selection() if selection is not None else []
        current = view.currentIndex()
        focused = current.isValid() and (view.hasFocus() or view.viewport().hasFocus())
        ps = _PaintPass(
            view=view, base=base, cols=[(hh.sectionViewportPosition(c), hh.sectionSize(c)) for c in range(n_cols)],
            ranges=[(r.top(), r.bottom(), r.left(), r.right()) for r in picks if r.isValid()],
            focus_cell=(current.row(), current.column()) if focused else None,
            highlight=highlight, alternate=alternate, colors=colors, icon_mode=icon_mode,
            # The selection is drawn twice (row panel, then cell panel); once is the same when opaque.
            cell_highlight=not highlight.isOpaque(),
        )
        last_x = hh.length() - hh.offset() - 1
        last_y = vh.length() - vh.offset() - 1
        rects = list(region)
        drawn: set[tuple[int, int]] | None = set() if len(rects) > 1 else None
        painter = QPainter(view.viewport())
        try:
            for dirty in rects:
                top_px, bottom_px = dirty.top(), min(dirty.bottom(), last_y)
                left_px, right_px = dirty.left(), min(dirty.right(), last_x)
                if bottom_px < top_px or right_px < left_px:
                    continue
                left, right = hh.visualIndexAt(left_px), hh.visualIndexAt(right_px)
                left, right = max(left, 0), (right if right >= 0 else n_cols - 1)
                top, bottom = vh.visualIndexAt(top_px), vh.visualIndexAt(bottom_px)
                bottom = bottom if bottom >= 0 else n_rows - 1
                if top < 0 or top > bottom:
                    continue
                for row in range(top, bottom + 1):
                    todo = range(left, right + 1)
                    if drawn is not None:  # several dirty rectangles: each cell once
                        todo = [c for c in todo if (row, c) not in drawn]
                        drawn.update((row, c) for c in todo)
                    if todo:
                        self._paint_row(painter, ps, row, todo, right - left + 1)
        finally:
            painter.end()
        return True

    def _paint_row(self, painter: QPainter, ps: _PaintPass, row: int, todo: Sequence[int], span: int) -> None:
        """Cells ``todo`` (visual columns, ``span`` of them in the dirty rectangle) of one row."""
        vh, model, cols = ps.view.verticalHeader(), self._model, ps.cols
        y, h = vh.sectionViewportPosition(row), vh.sectionSize(row)
        picked = [any(t <= row <= b and lo <= c <= hi for t, b, lo, hi in ps.ranges) for c in todo]
        alt_row = ps.alternate is not None and bool(row & 1)
        # The row panel under each cell (PE_PanelItemViewRow): the selection, else
        # the alternate colour; one rectangle when it is the same along the row.
        if len(todo) == span and (all(picked) or not any(picked)):
            brush = ps.highlight if picked[0] else (ps.alternate if alt_row else None)
            if brush is not None:
                x0, last = cols[todo[0]][0], cols[todo[-1]]
                painter.fillRect(QRect(x0, y, last[0] + last[1] - x0, h), brush)
        else:
            for c, sel in zip(todo, picked, strict=True):
                brush = ps.highlight if sel else (ps.alternate if alt_row else None)
                if brush is not None:
                    painter.fillRect(QRect(cols[c][0], y, cols[c][1], h), brush)
        for c, sel in zip(todo, picked, strict=True):
            x, w = cols[c]
            if (row, c) == ps.focus_cell:
                self._paint_standard(painter, ps.view, ps.base, row, c, QRect(x, y, w, h), sel, alt_row)
                continue
            cell = model.cell(row, c)
            if cell is None:
                continue
            layout = self._layouts.get((c, w, h, cell[3] is not None))
            if layout is None:
                opt = QStyleOptionViewItem(ps.base)
                opt.rect = QRect(x, y, w, h)
                layout = self._layout(opt, model.index(row, c), cell[3] is not None, ps.view)
            if sel and ps.cell_highlight:
                painter.fillRect(QRect(x, y, w, h), ps.highlight)
            self._draw_cell(painter, c, cell, x, y, w, h, sel, ps.colors, ps.icon_mode, layout)

    def _paint_standard(
        self, painter: QPainter, view: QTableView, base: QStyleOptionViewItem, row: int, col: int,
        rect: QRect, selected: bool, alt_row: bool,
    ) -> None:
        """One cell through QStyledItemDelegate, as QTableView's drawCell would (row panel done)."""
        self.counts["standard"] += 1
        opt = QStyleOptionViewItem(base)
        opt.rect = rect
        state = base.state | _State.State_HasFocus
        opt.state = state | _State.State_Selected if selected else state
        if view.alternatingRowColors():
            opt.features = base.features | _ALTERNATE if alt_row else base.features & ~_ALTERNATE
        if base.state & _State.State_Enabled:
            palette = opt.palette
            palette.setCurrentColorGroup(_NORMAL)
            opt.palette = palette
        QStyledItemDelegate.paint(self, painter, opt, self._model.index(row, col))

    # ------------------------------------------------------------------ one cell (Qt's path)
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        state = option.state.value
        col = index.column()
        standard = state & _OWN_STATES or option.features & _WRAP or option.textElideMode != _FILE_ELIDE
        cell = None if standard else self._model.cell(index.row(), col)
        if cell is None:
            self.counts["standard"] += 1
            super().paint(painter, option, index)
            return
        self.counts["cell"] += 1
        self._use_font(option.font)
        x, y, w, h = option.rect.getRect()
        layout = self._layouts.get((col, w, h, cell[3] is not None))
        if layout is None:
            layout = self._layout(option, index, cell[3] is not None, option.widget)
        group = (_NORMAL if state & _ACTIVE else _INACTIVE) if state & _ENABLED else _DISABLED
        palette = option.palette
        colors = (palette.color(group, _ROLE.Text), palette.color(group, _ROLE.HighlightedText),
                  palette.brush(group, _ROLE.Highlight))
        selected = bool(state & _SELECTED)
        if selected:  # the cell panel (PE_PanelItemViewItem): the selection
            painter.fillRect(option.rect, colors[2])
        mode = QIcon.Mode.Disabled if group == _DISABLED else QIcon.Mode.Normal
        self._draw_cell(painter, col, cell, x, y, w, h, selected, colors, mode, layout)

    # ------------------------------------------------------------------ drawing
    def _draw_cell(
        self, painter: QPainter, col: int, cell: Cell, x: int, y: int, w: int, h: int, selected: bool,
        colors: Colors, icon_mode: QIcon.Mode, layout: tuple[QRect, tuple[int, int, int, int]],
    ) -> None:
        """Tint, marker and text of one cell (its row panel and selection fill are drawn)."""
        text, color, background, icon = cell
        if background is not None and not selected:
            painter.fillRect(QRect(x, y, w, h), background)
        icon_rect, (tx, ty, tw, th) = layout
        if icon is not None:
            mode = QIcon.Mode.Selected if selected and icon_mode == QIcon.Mode.Normal else icon_mode
            icon.paint(painter, icon_rect.translated(x, y), _CENTER, mode, QIcon.State.Off)
        if not text:
            return
        painter.setPen(colors[1] if selected else (colors[0] if color is None else color))
        # Where the style puts the text: aligned in its box, middle-elided when too wide.
        static, natural, advance, height = self._laid_out(text)
        if natural > tw and col == COL_FILE:  # the style elides on the natural width (a narrow File column)
            static, natural, advance, height = self._laid_out(self._elided(text, tw))
        x += tx
        align = ALIGNMENTS[col]
        if align & _ALIGN_RIGHT:
            x += tw - advance
        elif align & _ALIGN_HCENTER:
            x += (tw - advance) / 2
        painter.drawStaticText(QPointF(x, y + ty + int((th - height) / 2)), static)

    def _use_font(self, font: QFont) -> None:
        if font != self._font:
            self._font = QFont(font)
            self._metrics = QFontMetricsF(font)
            self._texts.clear()
            self._elisions.clear()

    def _laid_out(self, text: str) -> tuple[QStaticText, float, float, int]:
        """``text`` laid out once in the view's font: (layout, natural width, advance, height)."""
        found = self._texts.get(text)
        if found is None:
            static = QStaticText(text)
            static.setTextFormat(Qt.TextFormat.PlainText)
            static.prepare(QTransform(), self._font)
            size = static.size()
            # The style elides on the natural width and aligns on the advance (they
            # differ by the last glyph's overhang); the line box is whole pixels high.
            found = (static, size.width(), self._metrics.horizontalAdvance(text), round(size.height()))
            if len(self._texts) >= TEXT_CACHE_SIZE:
                self._texts.clear()
            self._texts[text] = found
        return found

    def elided_text(self, col: int, text: str, width: int) -> str:
        """What column ``col`` shows of ``text`` in ``width`` pixels: only file names are shortened."""
        return self._elided(text, width) if col == COL_FILE else text

    def initStyleOption(self, option: QStyleOptionViewItem, index: Index) -> None:  # Qt override
        super().initStyleOption(option, index)
        if index.column() != COL_FILE:  # Qt's own path (the focused cell) shortens names only, as ours
            option.textElideMode = Qt.TextElideMode.ElideNone

    def _elided(self, text: str, width: int) -> str:
        """A file name shortened from the left (folder part first) to ``width`` pixels."""
        key = (text, width)
        found = self._elisions.get(key)
        if found is None:
            found = QFontMetrics(self._font).elidedText(text, _FILE_ELIDE, width)
            if len(self._elisions) >= TEXT_CACHE_SIZE:
                self._elisions.clear()
            self._elisions[key] = found
        return found

    def _layout(
        self, option: QStyleOptionViewItem, index: Index, has_icon: bool, widget: QWidget | None
    ) -> tuple[QRect, tuple[int, int, int, int]]:
        """Marker and text boxes of a cell of this column and size: the style's own layout."""
        rect = option.rect
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = widget.style() if widget is not None else None
        if style is None:
            icon_rect, text_rect = QRect(), QRect(rect)
        else:
            icon_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemDecoration, opt, widget)
            text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
            # The style draws the text inside a margin of its own (focus-frame margin + 1).
            margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
            text_rect = text_rect.adjusted(margin, 0, -margin, 0)
        dx, dy = -rect.x(), -rect.y()
        found = (icon_rect.translated(dx, dy), text_rect.translated(dx, dy).getRect())
        if len(self._layouts) > 64:  # column widths change with the splitter
            self._layouts.clear()
        self._layouts[(index.column(), rect.width(), rect.height(), has_icon)] = found
        return found
