"""The main toolbar: open model / folder (with recent lists), run / cancel, run options.

Buttons keep their places: Run and Cancel sit side by side at fixed positions (Run is
disabled while a run goes on, Cancel while none does, so a double click on Run never
lands on Cancel), and the open folder's name goes last, in an eliding label that takes
what room is left, so its length moves no button.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QToolBar,
    QToolButton,
    QWidget,
)

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.precision import HALF, HALF_COST, PRECISION_ALIASES, half_unsupported_reason

from . import style
from .settings import DEVICES, PRECISIONS

#: Precision combo texts, in PRECISIONS order.
PRECISION_LABELS = ("auto", "exact", "fast", "half")
#: Each precision item's tooltip, in PRECISIONS order.
PRECISION_TIPS = (
    "auto: exact on the CPU, fast on CUDA",
    "exact: float32, the official code's scores (parity path)",
    "fast: float16 backbone on CUDA (float32 on the CPU) and a reduced-dimension\n"
    "candidate search whose nearest rows are re-scored exactly (image scores within 1 %)",
    "half: fast with a bfloat16 backbone on CPUs that run it natively (float16 on CUDA)\n" + HALF_COST,
)


def device_combo() -> QComboBox:
    """A combo of DEVICES with "cuda" disabled (and saying why) when no CUDA device exists."""
    combo = QComboBox()
    combo.addItems(DEVICES)
    if not torch.cuda.is_available():
        item = combo.model().item(DEVICES.index("cuda"))  # type: ignore[attr-defined]
        item.setEnabled(False)
        item.setToolTip("no CUDA device found")
    return combo


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle to the room it gets (``text()`` stays whole)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:  # Qt override: any width will do
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()


class MainToolBar(QToolBar):
    """Actions and run options; the window connects the actions and reads the options."""

    #: a path picked from a recent list: ("models" | "folders", path).
    recent_chosen = Signal(str, str)

    def __init__(self, recent: Callable[[str], list[str]], parent: QWidget | None = None) -> None:
        super().__init__("Main", parent)
        self.setObjectName("mainToolbar")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._recent = recent

        self.open_model_action = QAction(style.make_icon("model"), "Open model…", self)
        self.open_model_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_model_action.setToolTip("Open a .patchcore model file (Ctrl+O)")
        self.open_folder_action = QAction(style.make_icon("folder"), "Open folder…", self)
        self.open_folder_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_folder_action.setToolTip("Open a folder of images, searched recursively (Ctrl+Shift+O)")
        for action, kind in ((self.open_model_action, "models"), (self.open_folder_action, "folders")):
            menu = QMenu(self)
            menu.aboutToShow.connect(lambda m=menu, k=kind: self._fill_recent(m, k))
            action.setMenu(menu)
            self.addAction(action)
            button = self.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        # Placed last by ``add_folder_slot`` (after every button), so its length moves none.
        self.folder_label = ElidedLabel("")
        self.folder_label.setObjectName("folderLabel")
        self.addSeparator()

        self.run_action = QAction(style.make_icon("run"), "Run", self)
        self.run_action.setShortcut(QKeySequence("Ctrl+R"))
        self.run_action.setToolTip("Score every image of the folder (Ctrl+R)")
        self.cancel_action = QAction(style.make_icon("cancel"), "Cancel", self)
        self.cancel_action.setShortcut(QKeySequence("Esc"))
        self.cancel_action.setToolTip("Stop after the batch in flight; scored images are kept (Esc)")
        self.addAction(self.run_action)
        self.addAction(self.cancel_action)
        self.cancel_action.setEnabled(False)

        self.device_action = self.addWidget(QLabel("Device"))
        self.device_combo = device_combo()
        self.device_combo.setToolTip("auto: CUDA when available, else CPU")
        self.addWidget(self.device_combo)
        self.addWidget(QLabel("Precision"))
        self.precision_combo = QComboBox()
        for label, value, tip in zip(PRECISION_LABELS, PRECISIONS, PRECISION_TIPS, strict=True):
            self.precision_combo.addItem(label, value)
            self.precision_combo.setItemData(self.precision_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.precision_combo.setToolTip("\n".join(PRECISION_TIPS))
        self.addWidget(self.precision_combo)
        # The cost of half, in one line beside the choice while it is chosen.
        self.precision_note = QLabel(HALF_COST)
        self.precision_note.setObjectName("precisionNote")
        self._precision_note_action = self.addWidget(self.precision_note)
        self._precision_note_action.setVisible(False)
        self.precision_combo.currentIndexChanged.connect(self._precision_changed)
        self.device_combo.currentIndexChanged.connect(self._update_half_item)
        self._update_half_item()
        self.addWidget(QLabel("Batch"))
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setToolTip("Images per batch; lower it if the GPU runs out of memory")
        self.addWidget(self.batch_spin)
        self.addWidget(QLabel("Loaders"))
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(0, 64)
        self.workers_spin.setToolTip("Image-decoding processes (0: decode in the run's thread)")
        self.addWidget(self.workers_spin)

    def add_folder_slot(self) -> None:
        """The folder's name and image count, after every button (call once, last)."""
        self.addSeparator()
        self.addWidget(self.folder_label)

    def set_running(self, running: bool) -> None:
        """Run and Cancel stay where they are: one is enabled at a time; run options lock while running."""
        self.cancel_action.setEnabled(running)
        for w in (self.device_combo, self.precision_combo, self.batch_spin, self.workers_spin):
            w.setEnabled(not running)

    @property
    def precision(self) -> str:
        """The chosen precision: "auto", "exact", "fast" or "half"."""
        return str(self.precision_combo.currentData())

    def set_precision(self, value: str) -> None:
        """Choose ``value`` (old names fp32 / bf16 mean exact / fast); auto when unknown or unavailable."""
        i = self.precision_combo.findData(PRECISION_ALIASES.get(value, value))
        item = self.precision_combo.model().item(i) if i >= 0 else None  # type: ignore[attr-defined]
        self.precision_combo.setCurrentIndex(i if item is not None and item.isEnabled() else 0)

    def half_unavailable_reason(self) -> str | None:
        """Why half cannot run on the chosen device (None: it can)."""
        choice = self.device_combo.currentText()
        cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
        return half_unsupported_reason(torch.device("cuda" if cuda else "cpu"))

    def _update_half_item(self) -> None:
        """Enable half only where the chosen device runs it natively; the tooltip says why not."""
        item = self.precision_combo.model().item(PRECISIONS.index(HALF))  # type: ignore[attr-defined]
        reason = self.half_unavailable_reason()
        item.setEnabled(reason is None)
        item.setToolTip(PRECISION_TIPS[PRECISIONS.index(HALF)] if reason is None else reason)
        if reason is not None and self.precision == HALF:
            self.set_precision("auto")

    def _precision_changed(self) -> None:
        self._precision_note_action.setVisible(self.precision == HALF)

    def set_folder(self, path: Path, image_set: ImageSet) -> None:
        """Name the open folder and its image count (known before any run)."""
        gt = f" · ground truth ({image_set.mask_count} masks)" if image_set.has_labels else ""
        self.folder_label.setText(f"{path.name}: {len(image_set):,} images{gt}")
        self.folder_label.setToolTip(str(path))

    def _fill_recent(self, menu: QMenu, kind: str) -> None:
        menu.clear()
        items = self._recent(kind)
        if not items:
            menu.addAction("(no recent items)").setEnabled(False)
        for path in items:
            action = menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path, k=kind: self.recent_chosen.emit(k, p))
