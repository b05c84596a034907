"""The model card: what the open model is, how its thresholds were set (rule, rate and count,
review band, last changes) and whether its bank's provenance is recorded."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QFormLayout, QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

_FIELDS = (
    ("backbone", "Backbone"),
    ("input", "Input"),
    ("bank", "Memory bank"),
    ("training", "Trained on"),
    ("threshold", "Threshold"),
    ("rule", "Set by"),
    ("changes", "Changed"),
    ("provenance", "Provenance"),
    ("bn_warmup", "BatchNorm"),
    ("created", "Created"),
)


def describe(summary: dict[str, Any]) -> dict[str, str]:
    """The card's lines from ``PatchCoreModel.summary()`` (plain strings, testable)."""
    thr = summary.get("image_threshold", math.nan)
    pix = summary.get("pixel_threshold", math.nan)
    resize, crop = summary.get("resize"), summary.get("crop")
    n_train = summary.get("training_images")
    frac = summary.get("coreset_fraction")
    bank = f"{summary.get('bank_rows', 0):,} × {summary.get('feature_dim', 0)}"
    if frac:
        bank += f"  (coreset {frac:.0%})"
    return {
        "backbone": f"{summary.get('backbone', '?')}  ·  {', '.join(summary.get('layers', []))}",
        "input": (f"whole image → {crop} × {crop} px (no crop)" if summary.get("crop_mode") == "none"
                  else f"resize {resize} → crop {crop} px" if resize else f"crop {crop} px"),
        "bank": bank,
        "training": f"{n_train:,} good images" if isinstance(n_train, int) else "unknown",
        "threshold": _thresholds(thr, summary.get("review_from", math.nan), pix, summary.get("review_rate")),
        "rule": str(summary.get("threshold_rule") or "—"),
        "changes": (summary.get("threshold_history") or ["never (as trained)"])[-1],
        "provenance": str(summary.get("provenance") or "—"),
        "bn_warmup": str(summary.get("bn_warmup") or "—"),
        "created": _date(str(summary.get("created") or "")),
    }


def _thresholds(image: float, review_from: float, pixel: float, review_rate: float | None) -> str:
    """"image 812  ·  review from 640 (5 % of good)  ·  pixel 35.2"; the band only when set."""
    if not math.isfinite(image):
        return "none set (set one by hand)"
    band = ""
    if review_from is not None and math.isfinite(review_from):
        rate = f" ({review_rate * 100:.3g} % of good)" if review_rate else ""
        band = f"  ·  review from {review_from:.4g}{rate}"
    return f"image {image:.4g}{band}  ·  pixel {pixel:.4g}"


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso or "—"


class OneLineLabel(QLabel):
    """One line, cut at the end to the room it gets; ``text()`` and the tooltip stay whole.

    The card's values do not wrap: a wrapping card grows taller as the right column narrows,
    beyond the minimum height the window reserved for it, and squeezes the threshold panel
    below (the slider ran over the histogram at the smallest window).
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # Qt override: the whole text stays readable on hover
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # Qt override: any width will do
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()


class ModelCard(QFrame):
    """Compact facts about the model; empty state invites opening one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(4)
        self.title = QLabel("No model")
        self.title.setObjectName("cardTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.title)
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(2)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.values: dict[str, QLabel] = {}
        for key, text in _FIELDS:
            name = QLabel(text)
            name.setObjectName("muted")
            value = OneLineLabel("—")
            self.form.addRow(name, value)
            self.values[key] = value
        lay.addLayout(self.form)
        self.set_summary(None)

    def set_summary(self, summary: dict[str, Any] | None, name: str = "") -> None:
        """Fill the card from ``PatchCoreModel.summary()``; None shows the empty state."""
        if summary is None:
            self.title.setText("No model open")
            for v in self.values.values():
                v.setText("—")
            self.setToolTip("Open a .patchcore file (Ctrl+O) or drop one on the window")
            return
        self.title.setText(name or "model")
        self.setToolTip(str(summary.get("file", "")))
        for key, text in describe(summary).items():
            self.values[key].setText(text)  # cut to the card's width, whole in the tooltip
        history = summary.get("threshold_history") or []
        if len(history) > 1:  # the last few changes, newest last
            self.values["changes"].setToolTip("\n".join(history))
