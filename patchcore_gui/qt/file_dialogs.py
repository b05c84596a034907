"""The window's small dialogs in one place: file choosers, a path field, the warning box."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QMessageBox, QPushButton, QWidget

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


def ask_run_path(parent: QWidget, start: str) -> str:
    from .run_session import RUN_FILTER

    path, _ = QFileDialog.getOpenFileName(parent, "Open run", start, RUN_FILTER)
    return path


class PathField(QWidget):
    """A path box with a Browse… button ("open", "save" or "folder" chooser)."""

    changed = Signal(str)

    def __init__(self, mode: str, caption: str, file_filter: str = "", placeholder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode, self.caption, self.file_filter = mode, caption, file_filter
        #: A path the user picked in the save chooser, which already asked before replacing.
        self.confirmed = ""
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.changed)
        self.button = QPushButton("Browse…")
        self.button.clicked.connect(self.browse)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.button)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)

    def browse(self) -> None:
        start = self.text() or str(Path.home())
        if self.mode == "folder":
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, self.caption, start, self.file_filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.file_filter)
        if path:
            if self.mode == "save":
                self.confirmed = path
            self.set_text(path)

    def replace_confirmed(self) -> bool:
        """True when the current path was chosen (and a replacement confirmed) in the chooser."""
        return bool(self.confirmed) and self.confirmed == self.text()

    def model_output(self) -> Path | str:
        """The model file to write (``.patchcore`` added), or a sentence saying why not."""
        text = self.text()
        if not text:
            return "Choose where to save the model."
        out = Path(text).expanduser()
        if not out.suffix:
            out = out.with_suffix(".patchcore")
        if not out.parent.is_dir():
            return f"The folder {out.parent} does not exist."
        if out.exists() and not self.replace_confirmed():
            return f"{out.name} already exists: choose another name (Browse… asks before replacing)."
        return out


def show_warning(parent: QWidget, text: str, previous: QMessageBox | None = None) -> QMessageBox:
    """A non-modal warning (never blocks the event loop or a test); replaces ``previous``."""
    if previous is not None:
        previous.close()
    box = QMessageBox(QMessageBox.Icon.Warning, "PatchCore Inspector", text, parent=parent)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.open()
    return box
