"""The strip of overlay controls under the image: heatmap on / off, opacity, colour map,
region and ground-truth outlines, fit, and the colour-scale legend.

Only widgets; ``image_pane`` connects them to its layers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QWidget,
)

from patchcore_gui.core import heatmap

from . import style
from .colorbar import ColorBar


class OverlayControls(QWidget):
    """The image pane's overlay controls (defaults: heatmap, region and truth shown, 55 %, inferno)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
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
        row.addWidget(self.scale_label)
        row.addWidget(self.colorbar, 1)

