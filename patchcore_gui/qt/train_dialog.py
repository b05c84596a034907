"""Model > Train new model…: good images in, a ``.patchcore`` file out.

The backbone list says which backbones have ImageNet weights on this computer
(``available_offline``); the others need a weights file, never a download. Training
runs in a background thread with a progress bar per stage (features, coreset,
calibration) and Cancel; a cancelled or failed training writes no file, a finished
one is saved atomically and opened in the window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QListWidget,
    QSpinBox,
    QWidget,
)

from .file_dialogs import MODEL_FILTER, PathField
from .task_dialog import TaskDialog
from .toolbar import device_combo

WEIGHTS_FILTER = "PyTorch weights (*.pth *.pt *.bin *.safetensors);;All files (*)"
_STAGES = {
    "features": "Extracting features",
    "coreset": "Selecting the final coreset",
    "calibration": "Scoring each good image without its own bank rows (calibration)",
}
_PREFERRED = ("wide_resnet50_2", "efficientnet_lite0", "resnet18", "resnet50", "wide_resnet101_2")


@dataclass(frozen=True)
class TrainResult:
    """A finished training: the model file, the images found, and those skipped (path, why)."""

    path: str
    found: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def backbone_label(name: str, weights: str | None) -> str:
    """How a backbone reads in the list: with or without weights on this computer."""
    return name if weights else f"{name} (no weights offline — pick a weights file)"


def default_output(folder: Path, backbone: str) -> Path:
    """``<folder name>-<backbone>.patchcore`` beside the folder, not replacing a file."""
    first = folder.parent / f"{folder.name}-{backbone}.patchcore"
    path, n = first, 1
    while path.exists():
        n += 1
        path = first.with_name(f"{first.stem}-{n}.patchcore")
    return path


class TrainDialog(TaskDialog):
    """Scripting: ``set_folder``, the field widgets, ``start``; ``task_succeeded(model path)``."""

    def __init__(self, batch_size: int = 8, parent: QWidget | None = None,
                 offline: dict[str, str | None] | None = None) -> None:
        super().__init__("Train new model", "Train", parent)
        from patchcore_gui.core.backbones import available_offline

        self.batch_size = batch_size
        self.offline = offline if offline is not None else available_offline()
        self._auto_output = ""
        self.resize(640, 0)

        self.folder_field = PathField("folder", "Folder of good images", placeholder="folder of defect-free images")
        self.folder_field.changed.connect(self._on_folder)
        self.form.addRow("Good images", self.folder_field)
        self.count_label = QLabel("An MVTec class folder uses its train/good images; any other folder all its images.")
        self.count_label.setObjectName("hint")
        self.form.addRow("", self.count_label)

        self.backbone_combo = QComboBox()
        for name, weights in self.offline.items():
            self.backbone_combo.addItem(backbone_label(name, weights), name)
            self.backbone_combo.setItemData(
                self.backbone_combo.count() - 1,
                f"ImageNet weights: {weights}" if weights else "No weights on this computer: pick a weights file",
                Qt.ItemDataRole.ToolTipRole,
            )
        have = [n for n in _PREFERRED if self.offline.get(n)]
        if have:
            self.backbone_combo.setCurrentIndex(self.backbone_combo.findData(have[0]))
        self.backbone_combo.currentIndexChanged.connect(self._on_backbone)
        self.form.addRow("Backbone", self.backbone_combo)
        self.weights_field = PathField("open", "Backbone weights file", WEIGHTS_FILTER,
                                       "optional: a state-dict file (.pth) for this backbone")
        self.form.addRow("Weights file", self.weights_field)

        self._add_input_rows()
        self.coreset_spin = QDoubleSpinBox()
        self.coreset_spin.setRange(0.1, 100.0)
        self.coreset_spin.setDecimals(1)
        self.coreset_spin.setValue(10.0)
        self.coreset_spin.setSuffix(" %")
        self.coreset_spin.setToolTip("Share of patch features kept in the memory bank (smaller: faster, less exact)")
        self.form.addRow("Coreset", self.coreset_spin)
        self.false_reject_spin = QDoubleSpinBox()
        self.false_reject_spin.setRange(0.1, 20.0)
        self.false_reject_spin.setDecimals(1)
        self.false_reject_spin.setSingleStep(0.5)
        self.false_reject_spin.setValue(1.0)
        self.false_reject_spin.setSuffix(" %")
        self.false_reject_spin.setToolTip(
            "Share of good parts the default threshold rejects, estimated from every training image's "
            "score against the bank without its own patches")
        self.form.addRow("False rejects", self.false_reject_spin)
        self.device_combo = device_combo()
        self.form.addRow("Device", self.device_combo)
        self.output_field = PathField("save", "Save the model as", MODEL_FILTER, "model file (.patchcore)")
        self.form.addRow("Save model as", self.output_field)
        # Advanced: hidden until asked for, so an operator cannot change it by accident.
        self.advanced_check = QCheckBox("Show advanced options")
        self.form.addRow("", self.advanced_check)
        self.bn_warmup_combo = QComboBox()
        self.bn_warmup_combo.addItem("official (as patchcore-inspection)", "official")
        self.bn_warmup_combo.addItem("none (weights as loaded)", "none")
        self.bn_warmup_combo.setToolTip(
            "The official code runs one train-mode forward of an all-ones image before any feature, "
            "which updates every BatchNorm's statistics; its scores depend on it. Keep 'official' "
            "unless you compare against code that skips it."
        )
        self.form.addRow("BatchNorm warm-up", self.bn_warmup_combo)
        self._add_coverage_choice()
        self.advanced_check.toggled.connect(self._show_advanced)
        self._show_advanced(False)
        for spin in (self.crop_spin, self.resize_spin, self.coreset_spin, self.false_reject_spin, self.device_combo,
                     self.bn_warmup_combo):
            spin.setMinimumWidth(170)
        # Unreadable images are skipped, never silently: listed here after a training.
        self.skipped_list = QListWidget()
        self.skipped_list.setMaximumHeight(90)
        self.skipped_list.setVisible(False)
        self.outer.addWidget(self.skipped_list)
        self.finish_layout()
        self._on_backbone()

    # ------------------------------------------------------------------ scripting
    def set_folder(self, folder: str | Path) -> None:
        self.folder_field.set_text(str(folder))

    def set_backbone(self, name: str) -> None:
        self.backbone_combo.setCurrentIndex(self.backbone_combo.findData(name))

    def backbone(self) -> str:
        return str(self.backbone_combo.currentData())

    def start(self) -> bool:
        """Check the form and train in the background."""
        from patchcore_gui.core.coreset import CancelledError
        from patchcore_gui.core.datasets import mvtec_train_paths
        from patchcore_gui.core.engine import TrainConfig, train_model

        folder_text = self.folder_field.text()
        if not folder_text or not Path(folder_text).is_dir():
            return self.refuse("Choose the folder of good (defect-free) images.")
        folder = Path(folder_text)
        try:
            paths = mvtec_train_paths(folder)
        except (OSError, ValueError) as exc:
            return self.refuse(f"Cannot read {folder}: {exc}")
        if not paths:
            return self.refuse(f"No images found in {folder}.")
        backbone = self.backbone()
        weights = self.weights_field.text()
        if weights and not Path(weights).is_file():
            return self.refuse(f"Weights file not found: {weights}")
        if not weights and not self.offline.get(backbone):
            return self.refuse(f"{backbone} has no ImageNet weights on this computer: pick a weights file "
                               "(a state dict such as the torchvision .pth file), or choose another backbone.")
        crop, resize = self.crop_spin.value(), self.resize_spin.value()
        whole = self.whole_check.isChecked()
        if whole and resize < 32:
            return self.refuse("The whole image is resized to resize x resize: set a resize of 32 px or more.")
        if not whole and resize and resize < crop:
            return self.refuse(f"Resize ({resize} px) must be at least the crop ({crop} px), or 0.")
        out = self.output_field.model_output()
        if isinstance(out, str):
            return self.refuse(out)
        cfg = TrainConfig(backbone=backbone, resize=resize, crop=resize if whole else crop,
                          crop_mode="none" if whole else "center", coreset=self.coreset_spin.value() / 100.0,
                          false_reject=self.false_reject_spin.value() / 100.0,
                          bn_warmup=str(self.bn_warmup_combo.currentData()))
        device = self.device_combo.currentText()
        batch = self.batch_size

        def job(progress: Any, cancel: threading.Event) -> TrainResult:
            model = train_model(paths, cfg, weights=weights or None, device=device, batch_size=batch,
                                num_workers=0, progress=progress, cancel=cancel, source=str(folder))
            if cancel.is_set():  # cancelled after the last check: still write nothing
                raise CancelledError("training cancelled")
            model.save(out)  # atomic: a failure leaves no partial file
            skipped = [(str(s["path"]), str(s["error"])) for s in model.metadata["training"].get("skipped", [])]
            return TrainResult(str(out), len(paths), skipped)

        self.skipped_list.clear()
        self.skipped_list.setVisible(False)
        return self.run_task(job, "train-model", f"Training on {len(paths):,} images…")

    # ------------------------------------------------------------------ texts
    def describe_progress(self, stage: str, done: int, total: int) -> str:
        return f"{_STAGES.get(stage, stage)}: {done:,} of {total:,}"

    def succeeded_text(self, result: Any) -> str:
        text = f"Model saved: {getattr(result, 'path', result)}."
        if getattr(result, "skipped", None):
            n = len(result.skipped)
            text += (f" {n:,} of {result.found:,} images skipped (unreadable), listed below; "
                     f"the model learned from the other {result.found - n:,}.")
            for path, why in result.skipped:
                self.skipped_list.addItem(f"{Path(path).name}: {why}")
                self.skipped_list.item(self.skipped_list.count() - 1).setToolTip(path)
            self.skipped_list.setVisible(True)
        return text

    # ------------------------------------------------------------------ internals
    def _show_advanced(self, shown: bool) -> None:
        self.form.setRowVisible(self.bn_warmup_combo, shown)
        self.form.setRowVisible(self.whole_check, shown)

    def _add_input_rows(self) -> None:
        """Crop and resize, and the line under them saying what the model will inspect."""
        self.crop_spin = QSpinBox()
        self.crop_spin.setRange(32, 1024)
        self.crop_spin.setValue(224)
        self.crop_spin.setSuffix(" px")
        self.crop_spin.setToolTip("Side of the centre crop the model sees")
        self.form.addRow("Crop", self.crop_spin)
        self.resize_spin = QSpinBox()
        self.resize_spin.setRange(0, 4096)
        self.resize_spin.setValue(256)
        self.resize_spin.setSuffix(" px")
        self.resize_spin.setSpecialValueText("no resize (crop only)")
        self.resize_spin.setToolTip("Shorter image side is resized to this before the crop (0: no resize)")
        self.form.addRow("Resize", self.resize_spin)
        # What the model will inspect: the centre crop leaves the image's border out.
        self.coverage_label = QLabel("")
        self.form.addRow("", self.coverage_label)

    def _add_coverage_choice(self) -> None:
        """The advanced "Whole image" check box, and the coverage line kept up to date."""
        self.coverage_label.setObjectName("hint")
        self.coverage_label.setWordWrap(True)
        self.whole_check = QCheckBox("Whole image (no centre crop)")
        self.whole_check.setToolTip(
            "Resize the whole image to resize x resize (the aspect ratio is not kept) and inspect all of it, "
            "instead of the official resize + centre crop, which never looks at the image's border.")
        self.form.addRow("Inspect", self.whole_check)
        for w in (self.crop_spin, self.resize_spin):
            w.valueChanged.connect(self._update_coverage)
        self.whole_check.toggled.connect(self._update_coverage)
        self._update_coverage()

    def _update_coverage(self, *_: object) -> None:
        """The line under Resize: what the centre crop leaves out, or that the whole image is used."""
        from patchcore_gui.core.preprocess import Preprocess

        whole, resize = self.whole_check.isChecked(), self.resize_spin.value()
        self.crop_spin.setEnabled(not whole)
        try:
            pre = (Preprocess(resize, resize, crop_mode="none") if whole
                   else Preprocess(resize, self.crop_spin.value()))
            note = pre.coverage_note()
        except ValueError as exc:
            note = str(exc)
        if whole and resize < 32:
            note = "Set a resize: the whole image is resized to resize x resize"
        elif not whole and resize and resize < self.crop_spin.value():
            note = "Resize must be at least the crop"
        self.coverage_label.setText(note[:1].upper() + note[1:] + ".")

    def _on_folder(self, text: str) -> None:
        from patchcore_gui.core.datasets import mvtec_train_paths

        folder = Path(text)
        if not self.is_running():
            self.set_status("")  # a message about the previous folder ("No images found…") is stale now
        if not text or not folder.is_dir():
            self.count_label.setText("Choose a folder of defect-free images.")
            return
        try:
            n = len(mvtec_train_paths(folder))
        except (OSError, ValueError) as exc:
            self.count_label.setText(f"Cannot read the folder: {exc}")
            return
        where = "train/good" if (folder / "train" / "good").is_dir() else "all images, recursively"
        self.count_label.setText(f"{n:,} good images ({where})")
        self._update_default_output()

    def _on_backbone(self, *_: object) -> None:
        needs = not self.offline.get(self.backbone())
        self.weights_field.edit.setPlaceholderText(
            "required: a state-dict file (.pth) for this backbone" if needs
            else "optional: another state-dict file for this backbone"
        )
        self._update_default_output()

    def _update_default_output(self) -> None:
        folder = Path(self.folder_field.text())
        if not self.folder_field.text() or not folder.is_dir():
            return
        if self.output_field.text() and self.output_field.text() != self._auto_output:
            return  # the user's own choice stays
        self._auto_output = str(default_output(folder, self.backbone()))
        self.output_field.set_text(self._auto_output)
