"""Changing a model's thresholds: new metadata with the new values and a history entry.

The model file keeps every change (when, old -> new, note) in ``threshold.history`` so a
quality record can say how the threshold in use came about. Works on the metadata dict
only, so the model module uses it without an import cycle.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any


def metadata_with_threshold(
    metadata: dict[str, Any], image_threshold: float, note: str = "", pixel_threshold: float | None = None
) -> dict[str, Any]:
    """A deep copy of a model's ``metadata`` carrying a new threshold and a dated note."""
    meta = copy.deepcopy(metadata)
    th = meta.setdefault("threshold", {})
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
    return meta
