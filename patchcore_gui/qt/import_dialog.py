"""File > Import official PatchCore model…: a patchcore-inspection folder in, a ``.patchcore`` out.

The official model keeps its settings in a Python pickle. Nothing in the folder is
read until the user has confirmed, in this dialog, that they trust where the model
comes from; the import then reads the pickle with ``core.official_import``'s
restricted reader (plain values only) and the result is saved in this tool's
pickle-free format, then opened.
"""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QCheckBox, QFrame, QLabel, QVBoxLayout, QWidget

from .background import one_line
from .file_dialogs import MODEL_FILTER, PathField
from .task_dialog import TaskDialog
from .train_dialog import WEIGHTS_FILTER

PARAMS_FILE = "patchcore_params.pkl"
INDEX_FILE = "nnscorer_search_index.faiss"

PICKLE_WARNING = (
    "<b>Only import a model from a source you trust.</b><br>"
    f"The official model stores its settings as a Python pickle ({PARAMS_FILE}). "
    "Opening a pickle can run any code its author put into it, on this computer and with your "
    "permissions: it could read, change or send your files.<br>"
    "This tool reads it with a restricted reader that refuses anything but plain data (numbers, text, "
    "lists, tables), so nothing in it is imported or run, and saves the model in its own pickle-free "
    "format. The reader is a safeguard, not a reason to import files of unknown origin."
)


def import_official_model(folder: Path, weights: str | None, device: str = "auto") -> Any:
    """Call ``core.official_import.import_official`` with the user's consent given.

    Written against the documented call ``import_official(src, weights=, device=)``; a
    consent keyword (``trust_pickle`` or similar), if the function grows one, is set.
    """
    from patchcore_gui.core import official_import

    fn = getattr(official_import, "import_official", None)
    if fn is None:
        raise RuntimeError("this version cannot import official models (core.official_import.import_official)")
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted: dict[str, Any] = {"weights": weights or None, "device": device}
    for name in ("trust_pickle", "trust", "trusted", "allow_pickle"):
        wanted[name] = True
    kwargs = {k: v for k, v in wanted.items() if k in params or (takes_any and k in ("weights", "device"))}
    return fn(folder, **kwargs)


def peek_backbone(folder: Path) -> str | None:
    """The backbone the official settings name (read with the restricted reader), or None."""
    try:
        from patchcore_gui.core.official_import import BACKBONE_NAMES, load_params

        name = load_params(folder / PARAMS_FILE).get("backbone.name")
        return BACKBONE_NAMES.get(name) if isinstance(name, str) else None
    except Exception:  # the import itself reports a bad file properly
        return None


def describe_failure(exc: BaseException) -> str:
    """One line for the user: the importer's own message when it has one."""
    lines = str(exc).strip().splitlines()
    known = type(exc).__name__ in ("OfficialImportError", "UnsafePickleError", "WeightsUnavailableError",
                                   "ModelFileError")
    return f"Not imported: {lines[0] if known and lines else one_line(exc)}"


class ImportDialog(TaskDialog):
    """Scripting: ``set_folder``, ``set_trusted``, ``set_weights``, ``set_output``, ``start``;
    ``task_succeeded(model path)``."""

    def __init__(self, parent: QWidget | None = None, offline: dict[str, str | None] | None = None) -> None:
        super().__init__("Import official PatchCore model", "Import", parent)
        from patchcore_gui.core.backbones import available_offline

        self.offline = offline if offline is not None else available_offline()
        self._describe = describe_failure
        self._auto_output = ""
        self.resize(640, 0)

        self.folder_field = PathField("folder", "patchcore-inspection model folder",
                                      placeholder=f"folder with {PARAMS_FILE} and {INDEX_FILE}")
        self.folder_field.changed.connect(self._on_folder)
        self.form.addRow("Model folder", self.folder_field)
        self.files_label = QLabel("")
        self.files_label.setObjectName("hint")
        self.form.addRow("", self.files_label)

        warning = QFrame()
        warning.setObjectName("warning")
        wlay = QVBoxLayout(warning)
        wlay.setContentsMargins(10, 8, 10, 8)
        self.warning_label = QLabel(PICKLE_WARNING)
        self.warning_label.setWordWrap(True)
        wlay.addWidget(self.warning_label)
        self.trust_check = QCheckBox("I trust the source of this model: read its settings pickle")
        wlay.addWidget(self.trust_check)
        self.form.addRow(warning)

        self.weights_field = PathField("open", "Backbone weights file", WEIGHTS_FILTER,
                                       "needed when the model's backbone has no weights on this computer")
        self.form.addRow("Weights file", self.weights_field)
        self.output_field = PathField("save", "Save the imported model as", MODEL_FILTER, "model file (.patchcore)")
        self.form.addRow("Save model as", self.output_field)
        self.finish_layout()
        # A wrapped label in a form row is laid out one line high at first: reserve the
        # height its text needs at the dialog's default width, so no sentence is cut off.
        self.warning_label.setMinimumHeight(self.warning_label.heightForWidth(540))
        self.trust_check.toggled.connect(lambda on: self.start_button.setEnabled(on and not self.is_running()))
        self.start_button.setEnabled(False)

    # ------------------------------------------------------------------ scripting
    def set_folder(self, folder: str | Path) -> None:
        self.folder_field.set_text(str(folder))

    def set_trusted(self, trusted: bool) -> None:
        self.trust_check.setChecked(trusted)

    def set_weights(self, path: str | Path) -> None:
        self.weights_field.set_text(str(path))

    def set_output(self, path: str | Path) -> None:
        self.output_field.set_text(str(path))

    def start(self) -> bool:
        """Refuse without the user's confirmation; else import in the background and save."""
        text = self.folder_field.text()
        folder = Path(text)
        if not text or not folder.is_dir():
            return self.refuse("Choose the folder of the official model.")
        missing = [n for n in (PARAMS_FILE, INDEX_FILE) if not (folder / n).is_file()]
        if missing:
            return self.refuse(f"{folder.name} is not a patchcore-inspection model folder (missing {', '.join(missing)}).")
        if not self.trust_check.isChecked():
            # Checked before a single byte of the pickle is read.
            return self.refuse("Not imported: confirm that you trust the source of this model first "
                               "(its settings are a pickle, which can run code when opened).")
        weights = self.weights_field.text()
        if weights and not Path(weights).is_file():
            return self.refuse(f"Weights file not found: {weights}")
        out = self.output_field.model_output()
        if isinstance(out, str):
            return self.refuse(out)
        backbone = peek_backbone(folder)
        if backbone and not weights and not self.offline.get(backbone):
            self.weights_field.edit.setFocus()
            return self.refuse(f"The model uses {backbone}, whose ImageNet weights are not on this computer: "
                               "pick its weights file (a state dict such as the torchvision .pth file).")

        def job(progress: Any, cancel: threading.Event) -> str:
            model = import_official_model(folder, weights or None)
            if cancel.is_set():
                from patchcore_gui.core.coreset import CancelledError

                raise CancelledError("import cancelled")
            model.save(out)  # atomic
            return str(out)

        return self.run_task(job, "import-official", f"Importing {folder.name}…")

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.start_button.setEnabled(not busy and self.trust_check.isChecked())

    def succeeded_text(self, result: Any) -> str:
        return (f"Imported and saved: {result}. It is now open in the window; the official format stores no "
                "threshold, so set one before trusting OK / NG verdicts.")

    # ------------------------------------------------------------------ internals
    def _on_folder(self, text: str) -> None:
        folder = Path(text)
        if not text or not folder.is_dir():
            self.files_label.setText("")
            return
        marks = [f"{'✓' if (folder / n).is_file() else '✗ missing'} {n}" for n in (PARAMS_FILE, INDEX_FILE)]
        self.files_label.setText("    ".join(marks))
        if not self.output_field.text() or self.output_field.text() == self._auto_output:
            self._auto_output = str(folder.parent / f"{folder.name}-imported.patchcore")
            self.output_field.set_text(self._auto_output)
