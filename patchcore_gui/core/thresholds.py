"""Changing a model's thresholds: a copy of the model with new values and a history entry.

The model file keeps every change (when, old -> new, note) in ``threshold.history`` so a
quality record can say how the threshold in use came about.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import PatchCoreModel


def with_threshold(
    model: PatchCoreModel, image_threshold: float, note: str = "", pixel_threshold: float | None = None
) -> PatchCoreModel:
    """A copy of ``model`` (sharing tensors) whose metadata carries a new threshold and a dated note."""
    new = copy.copy(model)
    new.metadata = copy.deepcopy(model.metadata)
    th = new.metadata.setdefault("threshold", {})
    history = th.setdefault("history", [])
    history.append({
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "old_image": th.get("image"),
        "image": float(image_threshold),
        "note": note,
    })
    th["image"] = float(image_threshold)
    if pixel_threshold is not None:
        th["pixel"] = float(pixel_threshold)
    th["source"] = "manual"
    th["rule"] = note or "set by hand"
    new.path = None
    return new
