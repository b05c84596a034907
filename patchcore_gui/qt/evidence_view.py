"""The Evidence pane: why the selected image's patch scores what it does.

A dock under the image (View > Evidence, key E shows it and gives it the focus) with
four pictures, the query patch's receptive-field box on the query (whole and
magnified) and its nearest normal region in the training picture the model file keeps
(magnified and whole), and the captions of ``reports/report_evidence.py``: distances
against the image and pixel thresholds, the next nearest training images.

It follows the selected image (its hottest patch) and clicks on the image (the patch
under the click); the arrow keys move the patch one grid cell. The same box is drawn
on the image pane. Work runs off the GUI thread, one request at a time, the newest
winning: a backbone pass per new image (cached by ``core.evidence.EvidenceFinder``),
then one exact pass over the bank per patch.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QImage, QKeyEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from patchcore_gui.core.evidence import Evidence, EvidenceFinder
from patchcore_gui.reports.report_evidence import QUERY_RGB, caption_lines, evidence_panels

#: Side of each picture on screen, in pixels.
SIDE = 168
QUERY_COLOR = QColor(*QUERY_RGB)


def _pixmap(img: Image.Image) -> QPixmap:
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    q = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(q.copy())  # copy: QImage does not own ``data``


class _Bridge(QObject):
    """Carries a finished request from the worker thread to the GUI thread (queued)."""

    done = Signal(int, object, object)  # request id, (Evidence, panels) or None, error text


class EvidenceView(QWidget):
    """The pane's content: pictures, captions; ``show_image`` / ``show_at`` / ``move`` request evidence."""

    #: The evidence now on screen (an ``Evidence``), for the box on the image and for tests.
    evidence_shown = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidenceView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.finder: EvidenceFinder | None = None
        self.evidence: Evidence | None = None
        self.path = ""
        self._pending: tuple[str, tuple[float, float] | None, tuple[int, int] | None] | None = None
        self._active = True
        self._request_id = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence")
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._on_done)
        self._build()
        self.clear("Select an image: its hottest patch is explained here.")

    def _build(self) -> None:
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(10)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.titles: list[QLabel] = []
        self.pictures: list[QLabel] = []
        for k, title in enumerate(("query", "query region", "nearest normal region", "nearest training image")):
            t = QLabel(title)
            t.setObjectName("muted")
            p = QLabel()
            p.setFixedSize(SIDE, SIDE)
            p.setAlignment(Qt.AlignmentFlag.AlignCenter)
            p.setStyleSheet("border: 1px solid palette(mid);")
            grid.addWidget(t, 0, k)
            grid.addWidget(p, 1, k)
            self.titles.append(t)
            self.pictures.append(p)
        lay.addLayout(grid)
        text = QVBoxLayout()
        self.heading = QLabel("")
        self.heading.setObjectName("cardTitle")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.caption.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.hint = QLabel("Click the image to explain another patch · arrow keys move it · E focuses this pane")
        self.hint.setObjectName("muted")
        text.addWidget(self.heading)
        text.addWidget(self.caption, 1)
        text.addWidget(self.hint)
        lay.addLayout(text, 1)

    # ------------------------------------------------------------------ state
    def set_model(self, model: Any) -> None:
        """A new model (or None): evidence starts over."""
        with self._lock:
            self._request_id += 1
        self.finder = EvidenceFinder(model) if model is not None else None
        self.clear("Select an image: its hottest patch is explained here." if model is not None
                   else "Open a model to see evidence.")

    def set_active(self, active: bool) -> None:
        """Only a visible pane computes; a request made while hidden runs when it shows."""
        self._active = active
        if active and self._pending is not None:
            path, at, cell = self._pending
            self._submit(path, at, cell)

    def clear(self, message: str = "") -> None:
        self.evidence = None
        self.path = ""
        self._pending = None
        for p in self.pictures:
            p.clear()
        self.heading.setText("Evidence")
        self.caption.setText(message)
        self.evidence_shown.emit(None)

    def shutdown(self) -> None:
        """Stop the worker (the window is closing)."""
        with self._lock:
            self._request_id += 1
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ requests
    def show_image(self, path: str) -> None:
        """Explain ``path``'s hottest patch."""
        self._submit(path, None, None)

    def show_at(self, x: float, y: float) -> None:
        """Explain the patch under original-image pixel (x, y) of the image shown."""
        if self.path:
            self._submit(self.path, (x, y), None)

    def move(self, d_row: int, d_col: int) -> None:
        """Explain the neighbouring patch (arrow keys)."""
        ev = self.evidence
        if ev is None:
            return
        row = min(max(ev.cell[0] + d_row, 0), ev.grid[0] - 1)
        col = min(max(ev.cell[1] + d_col, 0), ev.grid[1] - 1)
        if (row, col) != ev.cell:
            self._submit(self.path, None, (row, col))

    def _submit(self, path: str, at: tuple[float, float] | None, cell: tuple[int, int] | None) -> None:
        self.path = path
        if self.finder is None:
            return
        if not self._active:
            self._pending = (path, at, cell)
            return
        self._pending = None
        with self._lock:
            self._request_id += 1
            rid = self._request_id
        self.heading.setText("Evidence: computing…")
        finder = self.finder
        self._pool.submit(self._work, rid, finder, path, at, cell)

    def _work(self, rid: int, finder: EvidenceFinder, path: str, at: tuple[float, float] | None,
              cell: tuple[int, int] | None) -> None:
        """Worker thread: skip stale requests, compute, hand the result to the GUI thread."""
        with self._lock:
            if rid != self._request_id:
                return
        try:
            from patchcore_gui.core.uri_listing import load_any_image

            img = load_any_image(path)
            ev = finder.explain(path, at=at, cell=cell)
            panels = evidence_panels(ev, finder, img, SIDE)
            self._bridge.done.emit(rid, (ev, panels), "")
        except Exception as exc:  # one line for the pane; the window goes on
            self._bridge.done.emit(rid, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _on_done(self, rid: int, result: Any, error: str) -> None:
        with self._lock:
            if rid != self._request_id:
                return
        if result is None:
            self.clear(f"No evidence: {error}")
            return
        ev, panels = result
        self.evidence = ev
        for label, (title, img), t in zip(self.pictures, panels, self.titles, strict=True):
            label.setPixmap(_pixmap(img))
            t.setText(title)
        lines = caption_lines(ev)
        self.heading.setText("Evidence: " + ("hottest patch" if ev.hottest else "chosen patch"))
        self.caption.setText("\n".join(lines[1:]))
        self.caption.setToolTip(lines[0])
        self.evidence_shown.emit(ev)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override
        moves = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0)}
        step = moves.get(Qt.Key(event.key()))
        if step is not None:
            self.move(*step)
            event.accept()
            return
        super().keyPressEvent(event)


class EvidencePane(QObject):
    """The dock, its View-menu action (E), and its wiring to the window's selection and image."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = EvidenceView()
        self.dock = QDockWidget("Evidence", window)
        self.dock.setObjectName("evidenceDock")
        self.dock.setWidget(self.view)
        self.dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.action = QAction("Evidence", window)
        self.action.setShortcut("E")
        self.action.setToolTip("Show the nearest normal patch behind the selected image's score (E)")
        self.action.triggered.connect(self.focus)
        for a in window.menuBar().actions():
            if a.text().replace("&", "") == "View" and a.menu() is not None:
                a.menu().addSeparator()
                a.menu().addAction(self.action)
        window.addAction(self.action)
        self.dock.visibilityChanged.connect(self._on_visible)
        self.view.set_active(False)
        # The patch's box on the image pane.
        pane = window.image_pane  # type: ignore[attr-defined]
        self.box = QGraphicsRectItem()
        pen = QPen(QUERY_COLOR)
        pen.setWidth(2)
        pen.setCosmetic(True)  # 2 screen pixels at any zoom
        self.box.setPen(pen)
        self.box.setZValue(10)
        self.box.setVisible(False)
        pane.viewbox.addItem(self.box)
        pane.view.scene().sigMouseClicked.connect(self._on_click)
        self.view.evidence_shown.connect(self._draw_box)
        doc = window.doc  # type: ignore[attr-defined]
        doc.model_changed.connect(lambda: self.view.set_model(doc.model))
        window.results.image_selected.connect(self._on_selected)  # type: ignore[attr-defined]
        window.results.nothing_shown.connect(lambda _text: self.view.clear())  # type: ignore[attr-defined]
        self.view.set_model(doc.model)

    def focus(self) -> None:
        """E: show the pane and give it the keyboard."""
        self.dock.show()
        self.dock.raise_()
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _on_visible(self, visible: bool) -> None:
        self.view.set_active(visible)
        self.box.setVisible(visible and self.view.evidence is not None)

    def _on_selected(self, index: int) -> None:
        st = self.window.doc.results  # type: ignore[attr-defined]
        if st is None or index < 0:
            return
        if st.errors.get(index):
            self.view.clear(f"{st.names[index]} could not be scored: no evidence.")
            return
        self.view.show_image(st.paths[index])

    def _on_click(self, event: Any) -> None:
        if not self.dock.isVisible() or not self.view.path or event.button() != Qt.MouseButton.LeftButton:
            return
        pane = self.window.image_pane  # type: ignore[attr-defined]
        if pane.base_item.image is None:
            return
        p = pane.viewbox.mapSceneToView(event.scenePos())
        h, w = pane.base_item.image.shape[:2]
        if 0 <= p.x() < w and 0 <= p.y() < h:
            self.view.show_at(float(p.x()), float(p.y()))

    def _draw_box(self, ev: Evidence | None) -> None:
        if ev is None:
            self.box.setVisible(False)
            return
        x0, y0, x1, y1 = ev.box_original
        self.box.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.box.setVisible(self.dock.isVisible())

    def shutdown(self) -> None:
        self.view.shutdown()


def install_evidence(window: QMainWindow) -> EvidencePane:
    """Add the Evidence pane to ``window`` (a ``MainWindow``); the one hook the window calls."""
    return EvidencePane(window)
