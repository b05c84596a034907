"""The review band on the threshold panel: its check box and field, its line and its shade.

REVIEW (``core/verdict.py``) is ``review_from < score <= threshold``: a person decides.
The band is off by default; checking the box starts it where it was last, or a tenth
of the axis below the threshold. On the histogram a dashed line (draggable, stopped at
the threshold) marks its start and the band up to the threshold line is shaded behind
the bars. The threshold panel owns the values and the signals; this draws and lays out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout

from . import style
from .score_scale import ScoreScale
from .threshold_fields import ThresholdField

#: A new band starts this share of the axis below the threshold.
DEFAULT_WIDTH = 0.1


class ReviewBand:
    """The band's widgets and plot items (``check``, ``spin``, ``line``, ``region``)."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        color = style.REVIEW_COLOR
        self.line = pg.InfiniteLine(
            angle=90, movable=True, pen=pg.mkPen(color, width=2.5, style=Qt.PenStyle.DashLine),
            hoverPen=pg.mkPen(color, width=4),
        )
        self.line.setZValue(9)
        self.line.setToolTip("Review band start: REVIEW above it up to the threshold, OK at or below it")
        # Opaque: the REVIEW colour at 1/8 over the plot's background. A translucent fill
        # cost ~1 ms more per repaint (software raster) on every threshold move.
        bg, tint = style.BASE_BG, style.REVIEW_COLOR
        shade = [round(b + (t - b) / 8) for b, t in zip(bg.getRgb()[:3], tint.getRgb()[:3], strict=True)]
        self.region = pg.LinearRegionItem(values=(0, 1), movable=False, brush=pg.mkBrush(*shade), pen=pg.mkPen(None))
        self.region.setZValue(-5)  # behind the bars
        for item in (self.region, self.line):
            item.setVisible(False)
            plot.addItem(item, ignoreBounds=True)
        #: The band's last start (where checking the box puts it back).
        self.last = math.nan
        self.check = QCheckBox("Review band from")
        self.check.setToolTip("Send scores between this value and the threshold to REVIEW (a person decides)")
        self.spin = ThresholdField("review start")
        self.spin.setDecimals(3)
        self.spin.setMinimumWidth(96)
        self.spin.setToolTip("Start of the review band in raw score units: REVIEW when start < score ≤ threshold")
        self.spin.setEnabled(False)
        self.check.toggled.connect(self.spin.setEnabled)

    def build_row(self) -> QHBoxLayout:
        """The check box and the field, in one row."""
        row = QHBoxLayout()
        row.addWidget(self.check, 1)
        row.addWidget(self.spin)
        return row

    def show(self, visible: bool) -> None:
        self.line.setVisible(visible)
        self.region.setVisible(visible)

    def place(self, review_from: float, threshold: float, view: Callable[[float], float], enabled: bool) -> None:
        """Put the line, the shade and the field at ``review_from`` (NaN: hide them)."""
        on = math.isfinite(review_from) and enabled
        self.show(on)
        if not on:
            return
        a = float(view(review_from))
        b = float(view(threshold)) if math.isfinite(threshold) else a
        for w in (self.line, self.spin):
            w.blockSignals(True)
        self.line.setBounds((None, b))
        self.line.setValue(a)
        self.spin.setValue(review_from)
        for w in (self.line, self.spin):
            w.blockSignals(False)
        self.region.setRegion((a, b))

    def default_start(self, threshold: float, scale: ScoreScale) -> float:
        """Where a band switched on starts: its last start when still below ``threshold``, else
        ``DEFAULT_WIDTH`` of the axis below it (never below 0). NaN without a threshold."""
        if not math.isfinite(threshold):
            return math.nan
        if math.isfinite(self.last) and 0 <= self.last <= threshold:
            return self.last
        lo, hi = scale.to_view(scale.lo), scale.to_view(scale.hi)
        start = scale.from_view(float(scale.to_view(threshold)) - DEFAULT_WIDTH * float(hi - lo))
        return min(max(start, 0.0), threshold)
