"""Saving and restoring the main window's UI state through ``AppSettings``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from .settings import AppSettings
from .window_layout import WindowWidgets

DEFAULT_SIZE = (1500, 900)
#: The smallest window in which no panel overlaps another (the threshold slider stays
#: below the histogram's axis); the toolbar folds what does not fit into its » menu.
MIN_SIZE = (1024, 620)


def restore_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Geometry, splitters, run options and overlay options from the settings."""
    update_minimum_size(window)
    geometry = s.geometry("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(*DEFAULT_SIZE)
    else:
        restore_size(window, s)
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


def follow_minimum_height(window: QMainWindow) -> None:
    """Raise the minimum height to what the panels now need (after a run filled them).

    Only the height: the slider-over-histogram overlap is vertical, while the width hint
    then also counts the status bar's long run-file text, which may be cut instead.
    """
    need = max(window.minimumSizeHint().height(), MIN_SIZE[1])
    if need > window.minimumHeight():
        window.setMinimumHeight(need)


def restore_size(window: QMainWindow, s: AppSettings) -> None:
    """The window exactly as large as it was left, when it is back on a screen of the same size.

    ``restoreGeometry`` shrinks a window that is larger than the screen, which is right after a
    move to a smaller screen but wrong on the very screen where the operator made it that
    size: the splitters' saved widths then no longer fit and every panel drops to its minimum.
    """
    size, screen = s.numbers("size"), s.numbers("screen")
    available = window.screen().availableGeometry().size()
    if (size is None or len(size) != 2 or screen != [available.width(), available.height()]
            or window.isMaximized() or window.isFullScreen()):
        return
    window.resize(max(size[0], window.minimumWidth()), max(size[1], window.minimumHeight()))


def restore_splitters(ui: WindowWidgets, s: AppSettings) -> None:
    """The splitters' sizes (again once the window is shown: before, its width is not known).

    The saved widths themselves, not only ``restoreState``: when the window is narrower or
    wider than it was, the image (the panel that stretches) takes the difference, so the
    table and the side column keep the widths the operator gave them.
    """
    for key, splitter, stretch in (("splitter", ui.splitter, 1), ("right_splitter", ui.right_splitter, 0)):
        state = s.geometry(key)
        if state is not None:
            splitter.restoreState(state)
        saved = s.numbers(f"{key}_sizes")
        if saved is None or len(saved) != splitter.count() or min(saved) <= 0:
            continue
        saved[stretch] += sum(splitter.sizes()) - sum(saved)
        if saved[stretch] > 0:  # else not laid out yet (before show), or far narrower: restoreState's
            splitter.setSizes(saved)


def save_window_state(window: QMainWindow, ui: WindowWidgets, s: AppSettings) -> None:
    """Store window layout and run / view options (recent lists are stored as used)."""
    s.set_geometry("geometry", window.saveGeometry())
    if not (window.isMaximized() or window.isFullScreen()):
        available = window.screen().availableGeometry().size()
        s.set_numbers("size", [window.width(), window.height()])
        s.set_numbers("screen", [available.width(), available.height()])
    s.set_geometry("splitter", ui.splitter.saveState())
    s.set_geometry("right_splitter", ui.right_splitter.saveState())
    s.set_numbers("splitter_sizes", ui.splitter.sizes())
    s.set_numbers("right_splitter_sizes", ui.right_splitter.sizes())
    s.set_geometry("results_header", ui.results.view.horizontalHeader().saveState())
    s.device = ui.toolbar.device_combo.currentText()
    s.precision = ui.toolbar.precision
    s.batch_size = ui.toolbar.batch_spin.value()
    s.workers = ui.toolbar.workers_spin.value()
    s.overlay_opacity = ui.image_pane.opacity_slider.value()
    s.colormap = ui.image_pane.cmap_combo.currentText()
    s.sync()
