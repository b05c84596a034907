"""The menu bar: File, Model, Review, View, with their keyboard shortcuts.

The toolbar's actions (open model / folder, run, cancel) are reused, not duplicated:
one QAction per command, so a shortcut is never registered twice (Qt ignores an
ambiguous shortcut). The window connects the actions; this module only builds them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from . import style
from .toolbar import MainToolBar


def _action(parent: QMainWindow, text: str, shortcut: str | QKeySequence.StandardKey | None = None,
            tip: str = "", icon: str = "") -> QAction:
    a = QAction(style.make_icon(icon) if icon else QIcon(), text, parent)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    return a


class MainMenus:
    """Builds the menu bar of ``window`` and holds its actions."""

    def __init__(self, window: QMainWindow, toolbar: MainToolBar, recent_runs: Callable[[], list[str]]) -> None:
        bar = window.menuBar()
        self._recent_runs = recent_runs
        w = window

        # ---------------------------------------------------------------- File
        self.open_run_action = _action(w, "Open run…", "Ctrl+Alt+O", "Open a saved run file (.pcrun) and review it")
        self.resume_action = _action(w, "Resume run", "Ctrl+Shift+R",
                                     "Score the images an interrupted or cancelled run has not done yet", "resume")
        self.export_action = _action(w, "Export report…", "Ctrl+E",
                                     "Write an HTML, PDF or CSV report of the open run", "report")
        self.import_action = _action(w, "Import official PatchCore model…", None,
                                     "Convert a patchcore-inspection model folder into a .patchcore file")
        self.quit_action = _action(w, "Quit", QKeySequence.StandardKey.Quit, "Close the window (a run is cancelled)")
        file_menu = bar.addMenu("&File")
        file_menu.addAction(toolbar.open_model_action)
        file_menu.addAction(toolbar.open_folder_action)
        file_menu.addAction(self.open_run_action)
        self.recent_runs_menu = QMenu("Recent runs", file_menu)
        self.recent_runs_menu.aboutToShow.connect(self._fill_recent_runs)
        file_menu.addMenu(self.recent_runs_menu)
        file_menu.addSeparator()
        file_menu.addAction(toolbar.run_action)
        file_menu.addAction(toolbar.cancel_action)
        file_menu.addAction(self.resume_action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.import_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self.file_menu = file_menu
        #: a run chosen from Recent runs (its path).
        self.recent_run_chosen: Callable[[str], None] = lambda _p: None

        # ---------------------------------------------------------------- Model
        self.train_action = _action(w, "Train new model…", "Ctrl+T", "Train a model from a folder of good images")
        self.save_threshold_action = _action(w, "Save threshold to model…", QKeySequence.StandardKey.Save,
                                             "Write a new model file carrying the current thresholds", "save")
        self.threshold_log_action = _action(w, "Threshold log…", "Ctrl+L",
                                            "Every threshold change recorded in the open run")
        model_menu = bar.addMenu("&Model")
        model_menu.addAction(self.train_action)
        model_menu.addSeparator()
        model_menu.addAction(self.save_threshold_action)
        model_menu.addAction(self.threshold_log_action)

        # ---------------------------------------------------------------- Review
        self.mark_ok_action = _action(w, "Confirm OK", "O", "Mark the selected image OK (again: clear) and go on")
        self.mark_ng_action = _action(w, "Confirm NG", "N", "Mark the selected image NG (again: clear) and go on")
        self.operator_action = _action(w, "Operator name…", None, "The name stored with verdicts and on reports")
        review_menu = bar.addMenu("&Review")
        review_menu.addAction(self.mark_ok_action)
        review_menu.addAction(self.mark_ng_action)
        review_menu.addSeparator()
        self.review_filter_actions: dict[str, QAction] = {}
        for kind, text in (("any", "Show all"), ("unreviewed", "Show unreviewed"), ("reviewed", "Show reviewed")):
            a = review_menu.addAction(text)
            self.review_filter_actions[kind] = a
        review_menu.addSeparator()
        review_menu.addAction(self.operator_action)

        # ---------------------------------------------------------------- View
        self.overlay_action = _action(w, "Heatmap overlay", "Space", "Show or hide the heatmap")
        self.find_action = _action(w, "Search file names", QKeySequence.StandardKey.Find)
        self.fit_action = _action(w, "Fit image", "F", "Zoom so the whole image is visible")
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.overlay_action)
        view_menu.addAction(self.fit_action)
        view_menu.addAction(self.find_action)

    def _fill_recent_runs(self) -> None:
        menu = self.recent_runs_menu
        menu.clear()
        items = self._recent_runs()
        if not items:
            menu.addAction("(no recent runs)").setEnabled(False)
        for path in items:
            action = menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.recent_run_chosen(p))
