"""Saving and restoring the main window's UI state through ``AppSettings``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow

DEFAULT_SIZE = (1500, 900)


def restore_window_state(window: MainWindow) -> None:
    """Geometry, splitters, run options and overlay options from the settings."""
    s = window.settings
    geometry = s.geometry("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(*DEFAULT_SIZE)
    for key, splitter in (("splitter", window.splitter), ("right_splitter", window.right_splitter)):
        state = s.geometry(key)
        if state is not None:
            splitter.restoreState(state)
    window.toolbar.device_combo.setCurrentText(s.device)
    window.toolbar.set_precision(s.precision)
    window.toolbar.batch_spin.setValue(s.batch_size)
    window.toolbar.workers_spin.setValue(s.workers)
    window.image_pane.set_opacity(s.overlay_opacity)
    window.image_pane.set_colormap(s.colormap)


def save_window_state(window: MainWindow) -> None:
    """Store window layout and run / view options (recent lists are stored as used)."""
    s = window.settings
    s.set_geometry("geometry", window.saveGeometry())
    s.set_geometry("splitter", window.splitter.saveState())
    s.set_geometry("right_splitter", window.right_splitter.saveState())
    s.device = window.toolbar.device_combo.currentText()
    s.precision = window.toolbar.precision
    s.batch_size = window.toolbar.batch_spin.value()
    s.workers = window.toolbar.workers_spin.value()
    s.overlay_opacity = window.image_pane.opacity_slider.value()
    s.colormap = window.image_pane.cmap_combo.currentText()
    s.sync()
