"""Legend of the heatmap's absolute colour scale, with the pixel threshold marked."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import QWidget

from patchcore_gui.core import heatmap

from . import style


class ColorBar(QWidget):
    """Legend of the absolute heatmap scale with the pixel threshold marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(26)
        self.setMinimumWidth(180)
        self._lut = heatmap.lookup_table()
        self._levels = (0.0, 2.0)
        self._threshold = 1.0

    def set_scale(self, lut: np.ndarray, levels: tuple[float, float], threshold: float) -> None:
        self._lut, self._levels, self._threshold = lut, levels, threshold
        self.update()

    def paintEvent(self, event: object) -> None:  # Qt override
        p = QPainter(self)
        bar = QRectF(4, 2, self.width() - 8, 9)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for k in range(0, 256, 16):
            r, g, b = (int(v) for v in self._lut[k])
            grad.setColorAt(k / 255.0, QColor(r, g, b))
        p.fillRect(bar, grad)
        lo, hi = self._levels
        p.setPen(style.MUTED_TEXT)
        f = p.font()
        f.setPointSizeF(max(6.5, f.pointSizeF() - 1.5))
        p.setFont(f)
        p.drawText(QRectF(4, 12, 60, 14), Qt.AlignmentFlag.AlignLeft, f"{lo:.4g}")
        p.drawText(QRectF(self.width() - 64, 12, 60, 14), Qt.AlignmentFlag.AlignRight, f"{hi:.4g}")
        if hi > lo and math.isfinite(self._threshold):
            x = bar.left() + bar.width() * (self._threshold - lo) / (hi - lo)
            p.setPen(style.CONTOUR_COLOR)
            p.drawLine(int(x), 0, int(x), 13)
            # The bar's middle is the pixel threshold (levels are 0 .. 2 x threshold).
            p.drawText(QRectF(x - 30, 12, 60, 14), Qt.AlignmentFlag.AlignHCenter, f"{self._threshold:.4g}")
        p.end()
