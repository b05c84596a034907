"""Where the main window's panels go (the window only wires them; see main_window).

Menu bar and toolbar on top; results table | image (as large as possible) | model card, threshold
panel and, with ground truth, the metrics tabs; run progress in the status bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from . import style
from .image_pane import ImagePane
from .menus import MainMenus
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
    window.toolbar.addSeparator()
    window.menus = MainMenus(window, window.toolbar, lambda: window.settings.recent("runs"))
    # Resume sits beside Run / Cancel, shown only when the open run can go on (the
    # File menu's action stays listed, disabled with the reason, otherwise).
    resume = QAction(style.make_icon("resume"), "Resume", window)
    resume.setToolTip("Score the images this run has not done yet (Ctrl+Shift+R)")
    resume.triggered.connect(window.menus.resume_action.trigger)
    resume.setVisible(False)
    window.toolbar.insertAction(window.toolbar.cancel_action, resume)
    window.toolbar_resume_action = resume
    window.toolbar.addAction(window.menus.export_action)
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
    splitter.setSizes([480, 670, 380])
    window.splitter = splitter
    window.setCentralWidget(splitter)

    window.run_file_label = QLabel("")
    window.run_status = RunStatus()
    window.statusBar().addPermanentWidget(window.run_file_label)
    window.statusBar().addPermanentWidget(window.run_status)
    window.statusBar().setSizeGripEnabled(False)
    # Window-wide keys (Space, O / N, Ctrl+F...) are the menus' actions; up/down
    # belong to the table and the image pane themselves.
