"""Thresholds and the model file: calibration scores, and saving a tuned threshold into a
NEW model file (the open file is never replaced)."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError

if TYPE_CHECKING:
    from .main_window import MainWindow


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


def save_threshold_as(w: MainWindow) -> bool:
    """Write a NEW model file carrying the current thresholds (never the open file)."""
    if w.model is None or not math.isfinite(w.threshold):
        w._show_error("Open a model and set a threshold first.")
        return False
    target = w._ask_save_path(str(default_target(w.model.path)))
    if not target:
        return False
    if is_same_file(target, w.model.path):
        w._show_error("Choose a new file name: the open model file is never overwritten.")
        return False
    st = w.store
    note = threshold_note(w.threshold_origin, st.image_set.root.name if st else "", st.count if st else 0)
    try:
        new = write_with_threshold(w.model, target, w.threshold, w.pixel_threshold, note)
    except (OSError, ValueError, ModelFileError) as exc:
        w._show_error(f"Could not save {Path(target).name}: {exc}")
        return False
    w.model = new
    w.settings.add_recent("models", target)
    w.card.set_summary(new.summary(), Path(target).name)
    w.statusBar().showMessage(f"Saved {target}", 8000)
    return True
