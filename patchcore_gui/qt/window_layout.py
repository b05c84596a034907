"""Where the main window's panels go (the window only wires them; see main_window).

Toolbar on top; results table | image (as large as possible) | model card, threshold
panel and, with ground truth, the metrics tabs; run progress in the status bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from .image_pane import ImagePane
from .metrics_panel import MetricsPanel
from .model_card import ModelCard
from .results_model import ResultsTableModel
from .results_panel import ResultsPanel
from .status import RunStatus
from .threshold_panel import ThresholdPanel
from .toolbar import MainToolBar

if TYPE_CHECKING:
    from .main_window import MainWindow


def build_layout(window: MainWindow) -> None:
    """Create the panels as attributes of ``window`` and arrange them."""
    window.toolbar = MainToolBar(window.settings.recent, window)
    window.addToolBar(window.toolbar)
    window.table_model = ResultsTableModel(window)
    window.results = ResultsPanel(window.table_model)
    window.image_pane = ImagePane()
    window.card = ModelCard()
    window.threshold_panel = ThresholdPanel()
    window.metrics_panel = MetricsPanel()
    window.metrics_panel.setVisible(False)  # shown when the folder has ground truth

    right = QSplitter(Qt.Orientation.Vertical)
    right.setObjectName("rightSplitter")
    right.setChildrenCollapsible(False)
    top = QWidget()
    top_lay = QVBoxLayout(top)
    top_lay.setContentsMargins(0, 0, 0, 0)
    top_lay.setSpacing(10)
    top_lay.addWidget(window.card)
    top_lay.addWidget(window.threshold_panel, 1)
    right.addWidget(top)
    right.addWidget(window.metrics_panel)
    right.setSizes([560, 340])
    window.right_splitter = right

    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.setObjectName("mainSplitter")
    for w, margin in ((window.results, 8), (window.image_pane, 0), (right, 8)):
        w.setContentsMargins(margin, margin, margin, margin)
        splitter.addWidget(w)
    splitter.setStretchFactor(1, 1)  # the image takes what the side panels leave
    splitter.setSizes([430, 720, 380])
    window.splitter = splitter
    window.setCentralWidget(splitter)

    window.run_status = RunStatus()
    window.statusBar().addPermanentWidget(window.run_status)
    window.statusBar().setSizeGripEnabled(False)
    # Window-wide keys; up/down belong to the table and the image pane themselves.
    QShortcut(QKeySequence(Qt.Key.Key_Space), window, activated=window.image_pane.toggle_overlay)
    QShortcut(QKeySequence.StandardKey.Find, window, activated=window.results.search.setFocus)
