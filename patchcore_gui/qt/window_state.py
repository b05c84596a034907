"""Saving and restoring the main window's UI state through ``AppSettings``."""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow

from .settings import AppSettings
from .window_layout import WindowWidgets

DEFAULT_SIZE = (1500, 900)


def restore_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Geometry, splitters, run options and overlay options from the settings."""
    geometry = s.geometry("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(*DEFAULT_SIZE)
    for key, splitter in (("splitter", ui.splitter), ("right_splitter", ui.right_splitter)):
        state = s.geometry(key)
        if state is not None:
            splitter.restoreState(state)
    ui.toolbar.device_combo.setCurrentText(s.device)
    ui.toolbar.set_precision(s.precision)
    ui.toolbar.batch_spin.setValue(s.batch_size)
    ui.toolbar.workers_spin.setValue(s.workers)
    ui.image_pane.set_opacity(s.overlay_opacity)
    ui.image_pane.set_colormap(s.colormap)


def save_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Store window layout and run / view options (recent lists are stored as used)."""
    s.set_geometry("geometry", window.saveGeometry())
    s.set_geometry("splitter", ui.splitter.saveState())
    s.set_geometry("right_splitter", ui.right_splitter.saveState())
    s.device = ui.toolbar.device_combo.currentText()
    s.precision = ui.toolbar.precision
    s.batch_size = ui.toolbar.batch_spin.value()
    s.workers = ui.toolbar.workers_spin.value()
    s.overlay_opacity = ui.image_pane.opacity_slider.value()
    s.colormap = ui.image_pane.cmap_combo.currentText()
    s.sync()
