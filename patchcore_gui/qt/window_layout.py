"""Where the main window's panels go (the window only wires them; see main_window).

Menu bar and toolbar on top; results table | image (as large as possible) | model card, threshold
panel and, with ground truth, the metrics tabs; run progress in the status bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from . import style
from .drift_banner import DriftBanner
from .image_pane import ImagePane
from .menus import MainMenus
from .metrics_panel import MetricsPanel
from .model_card import ModelCard
from .results_model import ResultsTableModel
from .results_panel import ResultsPanel
from .settings import AppSettings
from .status import RunStatus
from .threshold_panel import ThresholdPanel
from .toolbar import MainToolBar


@dataclass(frozen=True)
class WindowWidgets:
    """The window's panels and bars, as ``build_layout`` made and placed them."""

    toolbar: MainToolBar
    menus: MainMenus
    #: Resume beside Run / Cancel, visible only when the open run can go on.
    toolbar_resume_action: QAction
    table_model: ResultsTableModel
    results: ResultsPanel
    image_pane: ImagePane
    card: ModelCard
    threshold_panel: ThresholdPanel
    metrics_panel: MetricsPanel
    splitter: QSplitter
    right_splitter: QSplitter
    run_status: RunStatus
    run_file_label: QLabel
    #: Above the panels, shown while the batch has drifted from the model's calibration.
    drift_banner: DriftBanner


def build_layout(window: QMainWindow, settings: AppSettings) -> WindowWidgets:
    """Create the panels, arrange them in ``window`` and return them."""
    toolbar = MainToolBar(settings.recent, window)
    window.addToolBar(toolbar)
    toolbar.addSeparator()
    menus = MainMenus(window, toolbar, lambda: settings.recent("runs"))
    # Resume sits beside Run / Cancel, shown only when the open run can go on (the
    # File menu's action stays listed, disabled with the reason, otherwise).
    resume = QAction(style.make_icon("resume"), "Resume", window)
    resume.setToolTip("Score the images this run has not done yet (Ctrl+Shift+R)")
    resume.triggered.connect(menus.resume_action.trigger)
    resume.setVisible(False)
    # After Cancel, so Run and Cancel keep their places when Resume shows.
    toolbar.insertAction(toolbar.device_action, resume)
    toolbar.addAction(menus.export_action)
    toolbar.add_folder_slot()
    table_model = ResultsTableModel(window)
    results = ResultsPanel(table_model)
    image_pane = ImagePane()
    card = ModelCard()
    threshold_panel = ThresholdPanel()
    metrics_panel = MetricsPanel()
    metrics_panel.setVisible(False)  # shown when the folder has ground truth

    right = QSplitter(Qt.Orientation.Vertical)
    right.setObjectName("rightSplitter")
    right.setChildrenCollapsible(False)
    top = QWidget()
    top_lay = QVBoxLayout(top)
    top_lay.setContentsMargins(0, 0, 0, 0)
    top_lay.setSpacing(10)
    top_lay.addWidget(card)
    top_lay.addWidget(threshold_panel, 1)
    right.addWidget(top)
    right.addWidget(metrics_panel)
    right.setSizes([560, 340])

    # The right column's margins sit in a layout around its splitter: a QSplitter's minimum
    # size leaves its own contents margins out, so the window's minimum would come out 16 px
    # short and squeeze the threshold panel (slider over the histogram) at the smallest size.
    right_inner = QWidget()
    right_lay = QVBoxLayout(right_inner)
    right_lay.setContentsMargins(8, 8, 8, 8)
    right_lay.addWidget(right)
    right_column = _scrolling_column(right_inner)

    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.setObjectName("mainSplitter")
    splitter.setChildrenCollapsible(False)  # a panel dragged small keeps its minimum, never vanishes
    for w, margin in ((results, 8), (image_pane, 0), (right_column, None)):
        if margin is not None:
            w.setContentsMargins(margin, margin, margin, margin)
        splitter.addWidget(w)
    splitter.setStretchFactor(1, 1)  # the image takes what the side panels leave
    splitter.setSizes([480, 670, 380])
    drift_banner = DriftBanner()
    central = QWidget()
    central_lay = QVBoxLayout(central)
    central_lay.setContentsMargins(0, 0, 0, 0)
    central_lay.setSpacing(0)
    central_lay.addWidget(drift_banner)  # takes no room while hidden
    central_lay.addWidget(splitter, 1)
    window.setCentralWidget(central)

    run_file_label = QLabel("")
    run_status = RunStatus()
    window.statusBar().addPermanentWidget(run_file_label)
    window.statusBar().addPermanentWidget(run_status)
    window.statusBar().setSizeGripEnabled(False)
    # Window-wide keys (Space, O / N, Ctrl+F...) are the menus' actions; up/down
    # belong to the table and the image pane themselves.
    return WindowWidgets(
        toolbar=toolbar, menus=menus, toolbar_resume_action=resume, table_model=table_model, results=results,
        image_pane=image_pane, card=card, threshold_panel=threshold_panel, metrics_panel=metrics_panel,
        splitter=splitter, right_splitter=right, run_status=run_status, run_file_label=run_file_label,
        drift_banner=drift_banner,
    )


class _ScrollingColumn(QScrollArea):
    """A column that scrolls vertically when the window is lower than its panels need.

    Model card, threshold panel and metrics tabs together need ~840 px with ground truth:
    more than a 1366 x 768 screen gives a window. Scrolling keeps every panel at its own
    minimum (the slider never runs over the histogram) while the window fits the screen.
    """

    def minimumSizeHint(self) -> QSize:  # Qt override: full width, any height
        inner = self.widget().minimumSizeHint()
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(inner.width() + bar + 2 * self.frameWidth(), 200)

    def sizeHint(self) -> QSize:  # Qt override
        inner = self.widget().sizeHint()
        return QSize(inner.width() + self.verticalScrollBar().sizeHint().width(), inner.height())


def _scrolling_column(inner: QWidget) -> QScrollArea:
    """``inner`` in a vertical-only scroll area without a frame."""
    area = _ScrollingColumn()
    area.setObjectName("rightColumn")
    area.setWidget(inner)
    area.setWidgetResizable(True)  # as tall as the viewport, never below the panels' minimum
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
    return area
