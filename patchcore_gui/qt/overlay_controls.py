"""The strip of overlay controls under the image: heatmap on / off, opacity, colour map,
region and ground-truth outlines, fit, and the colour-scale legend.

Only widgets; ``image_pane`` connects them to its layers.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from patchcore_gui.core import heatmap

from . import style
from .colorbar import ColorBar


class OverlayControls(QWidget):
    """The image pane's overlay controls (defaults: heatmap, region and truth shown, 55 %, inferno)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 4)
        outer.setSpacing(4)
        # minimumSizeHint below says how narrow the strip may go; the layout must not
        # raise the minimum back to one row's width.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        row = QHBoxLayout()
        row.setSpacing(6)
        self._second_row = QHBoxLayout()
        outer.addLayout(row)
        outer.addLayout(self._second_row)
        self._row = row
        row.setContentsMargins(8, 4, 8, 4)
        row.setSpacing(6)
        self.heat_check = QCheckBox("Heatmap")
        self.heat_check.setChecked(True)
        self.heat_check.setToolTip("Show the anomaly heatmap (Space)")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(heatmap.DEFAULT_OPACITY * 100))
        # Narrower when the window is: the image pane's controls set how far the
        # results table can widen beside it.
        self.opacity_slider.setMinimumWidth(50)
        self.opacity_slider.setMaximumWidth(110)
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.cmap_combo = QComboBox()
        self.cmap_combo.addItems(heatmap.COLORMAPS)
        self.cmap_combo.setToolTip("Heatmap colours")
        self.region_check = QCheckBox("Region")
        self.region_check.setChecked(True)
        self.region_check.setToolTip("Outline where the map exceeds the pixel threshold")
        self.gt_check = QCheckBox("Truth")
        self.gt_check.setChecked(True)
        self.gt_check.setToolTip("Outline of the ground-truth defect mask (cyan)")
        self.fit_button = QToolButton()
        self.fit_button.setIcon(style.make_icon("fit"))
        self.fit_button.setToolTip("Fit the image to the view")
        self.colorbar = ColorBar()
        self.colorbar.setToolTip("Absolute heatmap scale: 0 to 2 × pixel threshold (white mark)")
        row.addWidget(self.heat_check)
        row.addWidget(self.opacity_slider)
        row.addWidget(self.cmap_combo)
        row.addWidget(self.region_check)
        row.addWidget(self.gt_check)
        row.addWidget(self.fit_button)
        row.addStretch(1)
        self.scale_label = QLabel("scale")
        self.scale_label.setObjectName("muted")
        # The colour scale sits at the end of the row when the pane is wide enough and
        # moves to a second row when it is not, so no control is ever cut ("Heal", "Regi").
        self.scale_box = QWidget()
        scale_row = QHBoxLayout(self.scale_box)
        scale_row.setContentsMargins(0, 0, 0, 0)
        scale_row.setSpacing(6)
        scale_row.addWidget(self.scale_label)
        scale_row.addWidget(self.colorbar, 1)
        self._controls = (self.heat_check, self.opacity_slider, self.cmap_combo, self.region_check,
                          self.gt_check, self.fit_button)
        row.addWidget(self.scale_box, 1)

    def _controls_width(self) -> int:
        """The first row's minimum width without the colour scale, as its layout computes it."""
        m = self.layout().contentsMargins()
        width = self._row.minimumSize().width()
        if not self.scale_on_second_row():
            width -= self.scale_box.minimumSizeHint().width() + self._row.spacing()
        return width + m.left() + m.right()

    def scale_on_second_row(self) -> bool:
        """True when the colour scale has moved below the controls (a narrow pane)."""
        return self._second_row.indexOf(self.scale_box) >= 0

    def minimumSizeHint(self) -> QSize:  # Qt override: the controls only; the scale can wrap
        return QSize(self._controls_width(), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        one_row = self._controls_width() + self._row.spacing() + self.scale_box.minimumSizeHint().width()
        wrap = event.size().width() < one_row
        if wrap != self.scale_on_second_row():
            (self._second_row if wrap else self._row).addWidget(self.scale_box, 1)

