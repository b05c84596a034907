"""Thresholds and the model file: calibration scores, and saving a tuned threshold into a
NEW model file (the open file is never replaced)."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import numpy as np

from patchcore_gui.core.model import PatchCoreModel


def calibration_scores(model: PatchCoreModel | None) -> np.ndarray:
    """The held-out good images' scores stored in the model (empty when none)."""
    if model is None:
        return np.empty(0)
    return np.asarray(model.metadata.get("calibration", {}).get("scores", []), dtype=np.float64)


def default_target(model_path: Path | None) -> Path:
    """``<stem>-thr.patchcore`` beside the model (offered in the save dialog)."""
    src = model_path or Path("model.patchcore")
    return src.with_name(f"{src.stem}-thr.patchcore")


def threshold_note(origin: str, folder: str = "", images: int = 0, when: datetime | None = None) -> str:
    """The dated note kept in the model's threshold history: how and on what it was set."""
    stamp = (when or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %z")
    on = f" on {folder} ({images} images)" if folder and images else ""
    return f"{origin}{on}, {stamp}, PatchCore Inspector"


def is_same_file(a: str | os.PathLike[str], b: Path | None) -> bool:
    return b is not None and Path(a).resolve() == b.resolve()


def write_with_threshold(
    model: PatchCoreModel, target: str | os.PathLike[str], image_threshold: float, pixel_threshold: float, note: str
) -> PatchCoreModel:
    """A copy of ``model`` carrying the thresholds and ``note``, saved to ``target``."""
    pixel = pixel_threshold if math.isfinite(pixel_threshold) else None
    new = model.with_threshold(image_threshold, note, pixel_threshold=pixel)
    new.save(target)
    return new
