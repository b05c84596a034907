"""Saving and restoring the main window's UI state through ``AppSettings``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from .settings import AppSettings
from .window_layout import WindowWidgets

DEFAULT_SIZE = (1500, 900)
#: The smallest window in which no panel overlaps another (the threshold slider stays
#: below the histogram's axis); the toolbar folds what does not fit into its » menu.
MIN_SIZE = (1080, 760)


def restore_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Geometry, splitters, run options and overlay options from the settings."""
    update_minimum_size(window)
    geometry = s.geometry("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(*DEFAULT_SIZE)
    restore_splitters(ui, s)
    header = ui.results.view.horizontalHeader()
    state = s.geometry("results_header")
    if state is not None and header.restoreState(state):
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # widths only: arrival order again
    ui.toolbar.device_combo.setCurrentText(s.device)
    ui.toolbar.set_precision(s.precision)
    ui.toolbar.batch_spin.setValue(s.batch_size)
    ui.toolbar.workers_spin.setValue(s.workers)
    ui.image_pane.set_opacity(s.overlay_opacity)
    ui.image_pane.set_colormap(s.colormap)


def update_minimum_size(window: QMainWindow) -> None:
    """Every panel at its own minimum (the metrics tabs included when shown): nothing overlaps."""
    hint = window.minimumSizeHint()
    window.setMinimumSize(max(hint.width(), MIN_SIZE[0]), max(hint.height(), MIN_SIZE[1]))


def restore_splitters(ui: WindowWidgets, s: AppSettings) -> None:
    """The splitters' sizes (again once the window is shown: before, its width is not known)."""
    for key, splitter in (("splitter", ui.splitter), ("right_splitter", ui.right_splitter)):
        state = s.geometry(key)
        if state is not None:
            splitter.restoreState(state)


def save_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Store window layout and run / view options (recent lists are stored as used)."""
    s.set_geometry("geometry", window.saveGeometry())
    s.set_geometry("splitter", ui.splitter.saveState())
    s.set_geometry("right_splitter", ui.right_splitter.saveState())
    s.set_geometry("results_header", ui.results.view.horizontalHeader().saveState())
    s.device = ui.toolbar.device_combo.currentText()
    s.precision = ui.toolbar.precision
    s.batch_size = ui.toolbar.batch_spin.value()
    s.workers = ui.toolbar.workers_spin.value()
    s.overlay_opacity = ui.image_pane.opacity_slider.value()
    s.colormap = ui.image_pane.cmap_combo.currentText()
    s.sync()
