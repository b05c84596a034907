"""The window's dialogs in one place: file choosers and the non-modal warning box."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

MODEL_FILTER = "PatchCore model (*.patchcore);;All files (*)"


def start_dir(recent: list[str]) -> str:
    """The folder of the most recent item, else the home folder."""
    return str(Path(recent[0]).parent) if recent else str(Path.home())


def ask_model_path(parent: QWidget, recent: list[str]) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, "Open model", start_dir(recent), MODEL_FILTER)
    return path


def ask_folder(parent: QWidget, recent: list[str]) -> str:
    return QFileDialog.getExistingDirectory(parent, "Open image folder", start_dir(recent))


def ask_save_path(parent: QWidget, default: str) -> str:
    """Save dialog; Qt asks before replacing an existing file."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save model with this threshold", default, MODEL_FILTER)
    return path


def show_warning(parent: QWidget, text: str, previous: QMessageBox | None = None) -> QMessageBox:
    """A non-modal warning (never blocks the event loop or a test); replaces ``previous``."""
    if previous is not None:
        previous.close()
    box = QMessageBox(QMessageBox.Icon.Warning, "PatchCore Inspector", text, parent=parent)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.open()
    return box
