"""Look of the application: a dark Fusion palette, verdict colours, small drawn icons.

Verdicts always carry a word as well as a colour (OK / NG / error), so the colours here
are a second cue, never the only one. The icons are drawn with QPainter so the app
needs no image resources and looks the same on every platform.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

from patchcore_gui.core import heatmap

#: Verdict colours (text / marker) and their faint background tints for table cells.
OK_COLOR = QColor("#3fb26b")
NG_COLOR = QColor(*heatmap.NG_OUTLINE_RGB)  # #e5534b, also the NG region outline
ERROR_COLOR = QColor("#d4a72c")
UNKNOWN_COLOR = QColor("#8b949e")
OK_TINT = QColor(63, 178, 107, 40)
NG_TINT = QColor(229, 83, 75, 55)
ERROR_TINT = QColor(212, 167, 44, 45)
#: REVIEW (the review band: a person decides): violet, apart from the error amber.
REVIEW_COLOR = QColor("#a47cf0")
REVIEW_TINT = QColor(164, 124, 240, 50)

#: Histogram colours: this batch's scores and the model's held-out good images.
BATCH_COLOR = QColor("#58a6ff")
CALIBRATION_COLOR = QColor("#3fb26b")
THRESHOLD_COLOR = QColor("#f0883e")
#: Region above the pixel threshold, and the ground-truth mask outline (``core.heatmap``'s,
#: so the reports draw the same).
CONTOUR_COLOR = QColor(*heatmap.OUTLINE_RGB)
GT_COLOR = QColor(*heatmap.TRUTH_RGB)

WINDOW_BG = QColor("#1e2126")
PANEL_BG = QColor("#262a30")
BASE_BG = QColor("#16181c")
TEXT = QColor("#dfe3e8")
MUTED_TEXT = QColor("#8b949e")
ACCENT = QColor("#3d7eff")

STYLE_SHEET = """
QToolBar { spacing: 6px; padding: 4px; border: none; border-bottom: 1px solid #33383f; }
QToolBar QToolButton { padding: 4px 8px; }
QToolBar QLabel { color: #8b949e; padding-left: 6px; }
QStatusBar { border-top: 1px solid #33383f; }
QStatusBar QLabel { color: #b8c0c8; padding: 0 6px; }
QSplitter::handle { background: #2d3138; }
QSplitter::handle:horizontal { width: 3px; }
QSplitter::handle:vertical { height: 3px; }
QFrame#card { background: #262a30; border: 1px solid #33383f; border-radius: 6px; }
QLabel#cardTitle { font-weight: 600; font-size: 13px; }
QLabel#sectionTitle { color: #8b949e; font-weight: 600; text-transform: uppercase; }
QLabel#muted { color: #8b949e; }
QLabel#bigCount { font-size: 15px; font-weight: 600; }
QLabel#verdictBadge { border-radius: 4px; padding: 2px 8px; font-weight: 700; }
QPushButton#filter { padding: 3px 8px; border: 1px solid #3a4048; border-radius: 4px; }
QPushButton#filter:checked { background: #3d7eff; border-color: #3d7eff; color: white; }
QTableView { gridline-color: #2d3138; selection-background-color: #2f4f86; }
QHeaderView::section { background: #262a30; border: none; border-right: 1px solid #33383f;
    border-bottom: 1px solid #33383f; padding: 3px 6px; }
QTabWidget::pane { border: 1px solid #33383f; }
QProgressBar { border: 1px solid #3a4048; border-radius: 3px; text-align: center; height: 14px; }
QProgressBar::chunk { background: #3d7eff; }
QCheckBox::indicator, QRadioButton::indicator { width: 12px; height: 12px; border: 1px solid #6e7681;
    background: #16181c; }
QCheckBox::indicator { border-radius: 3px; }
QRadioButton::indicator { border-radius: 7px; }
QCheckBox::indicator:hover, QRadioButton::indicator:hover { border-color: #9aa4ae; }
QCheckBox::indicator:checked { background: #3d7eff; border-color: #3d7eff; }
QRadioButton::indicator:checked { background: #dfe3e8; border: 4px solid #3d7eff; width: 6px; height: 6px; }
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled { border-color: #3a4048; }
QCheckBox::indicator:checked:disabled { background: #2f4f86; border-color: #2f4f86; }
QFrame#warning { background: rgba(212, 167, 44, 28); border: 1px solid #8a6d1f; border-radius: 6px; }
QLabel#hint { color: #8b949e; font-size: 11px; }
QLabel#errorText { color: #e5534b; }
QLabel#okText { color: #3fb26b; }
"""


def apply_style(app: QApplication) -> None:
    """Fusion style with a dark palette; calm greys so the image and verdicts stand out."""
    app.setStyle("Fusion")
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, WINDOW_BG)
    pal.setColor(QPalette.ColorRole.WindowText, TEXT)
    pal.setColor(QPalette.ColorRole.Base, BASE_BG)
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#1b1e22"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, PANEL_BG)
    pal.setColor(QPalette.ColorRole.ToolTipText, TEXT)
    pal.setColor(QPalette.ColorRole.Text, TEXT)
    pal.setColor(QPalette.ColorRole.Button, PANEL_BG)
    pal.setColor(QPalette.ColorRole.ButtonText, TEXT)
    pal.setColor(QPalette.ColorRole.Highlight, ACCENT)
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("white"))
    pal.setColor(QPalette.ColorRole.PlaceholderText, MUTED_TEXT)
    pal.setColor(QPalette.ColorRole.Link, ACCENT)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c636b"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)


_VERDICT_COLORS = {0: OK_COLOR, 1: NG_COLOR, 2: ERROR_COLOR, 4: REVIEW_COLOR}


def verdict_color(code: int) -> QColor:
    """Colour of a verdict code (see ``core.result_table``: 0 OK, 1 NG, 2 error, 4 REVIEW, else pending)."""
    return _VERDICT_COLORS.get(int(code), UNKNOWN_COLOR)


def _canvas(size: int = 32) -> tuple[QPixmap, QPainter]:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pix, p


def make_icon(kind: str, color: QColor | None = None) -> QIcon:
    """A small line icon: "model", "folder", "run", "resume", "cancel", "save", "fit", "report"."""
    pix, p = _canvas()
    c = color or TEXT
    pen = QPen(c, 2.4)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    if kind == "model":  # a cube
        path = QPainterPath(QPointF(16, 4))
        for x, y in ((27, 10), (27, 22), (16, 28), (5, 22), (5, 10), (16, 4)):
            path.lineTo(x, y)
        p.drawPath(path)
        p.drawPolyline([QPointF(5, 10), QPointF(16, 16), QPointF(27, 10)])
        p.drawLine(QPointF(16, 16), QPointF(16, 28))
    elif kind == "folder":
        path = QPainterPath(QPointF(4, 9))
        for x, y in ((12, 9), (15, 12), (28, 12), (28, 26), (4, 26), (4, 9)):
            path.lineTo(x, y)
        p.drawPath(path)
    elif kind == "run":
        p.setBrush(color or OK_COLOR)
        p.setPen(Qt.PenStyle.NoPen)
        tri = QPainterPath(QPointF(9, 5))
        tri.lineTo(26, 16)
        tri.lineTo(9, 27)
        tri.closeSubpath()
        p.drawPath(tri)
    elif kind == "resume":  # a bar and a play triangle: go on from where it stopped
        p.drawLine(QPointF(7, 6), QPointF(7, 26))
        p.setBrush(color or OK_COLOR)
        p.setPen(Qt.PenStyle.NoPen)
        tri = QPainterPath(QPointF(12, 5))
        tri.lineTo(27, 16)
        tri.lineTo(12, 27)
        tri.closeSubpath()
        p.drawPath(tri)
    elif kind == "report":  # a page with text lines
        page = QPainterPath(QPointF(7, 4))
        for x, y in ((20, 4), (26, 10), (26, 28), (7, 28), (7, 4)):
            page.lineTo(x, y)
        p.drawPath(page)
        for y in (13, 18, 23):
            p.drawLine(QPointF(11, y), QPointF(22, y))
    elif kind == "cancel":
        p.setBrush(color or NG_COLOR)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(QRectF(7, 7, 18, 18), 3, 3)
    elif kind == "save":
        p.drawRoundedRect(QRectF(5, 5, 22, 22), 3, 3)
        p.drawRect(QRectF(10, 5, 12, 7))
        p.drawRect(QRectF(10, 18, 12, 9))
    elif kind == "fit":
        for x, y, dx, dy in ((5, 5, 1, 1), (27, 5, -1, 1), (5, 27, 1, -1), (27, 27, -1, -1)):
            p.drawLine(QPointF(x, y), QPointF(x + 7 * dx, y))
            p.drawLine(QPointF(x, y), QPointF(x, y + 7 * dy))
    p.end()
    return QIcon(pix)


def dot_icon(color: QColor, size: int = 12) -> QIcon:
    """A filled circle, used as the verdict marker beside the word in the table."""
    pix, p = _canvas(size)
    p.setBrush(color)
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    p.end()
    return QIcon(pix)
