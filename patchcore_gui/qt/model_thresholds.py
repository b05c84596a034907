"""Thresholds and the model file: the model's calibration scores, and saving tuned thresholds
into a NEW model file (the open file is never replaced)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError

from .document import InspectionDocument, is_same_file
from .settings import AppSettings


def calibration_scores(model: PatchCoreModel | None) -> np.ndarray:
    """The good training images' out-of-bank scores stored in the model (older models: the
    held-out images' scores; empty when none)."""
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


def write_with_threshold(
    model: PatchCoreModel, target: str | os.PathLike[str], image_threshold: float, pixel_threshold: float, note: str,
    review_from: float = math.nan,
) -> PatchCoreModel:
    """A copy of ``model`` carrying the thresholds and ``note``, saved to ``target``.

    The history entry is the one ``patchcore threshold`` writes (time, user, old -> new for
    each value changed, note); a NaN ``review_from`` means no review band.
    """
    pixel = pixel_threshold if math.isfinite(pixel_threshold) else None
    new = model.with_threshold(image_threshold, note, pixel_threshold=pixel, review_from=review_from)
    new.save(target)
    return new


def save_threshold_as(doc: InspectionDocument, settings: AppSettings, ask_path: Callable[[str], str]) -> bool:
    """Write a NEW model file carrying the current thresholds (never the open file).

    ``ask_path(default)`` asks where (the save dialog); "" cancels.
    """
    model = doc.model
    if model is None or not math.isfinite(doc.image_threshold):
        doc.report_error("Open a model and set a threshold first.")
        return False
    target = ask_path(str(default_target(model.path)))
    if not target:
        return False
    if is_same_file(target, model.path):
        doc.report_error("Choose a new file name: the open model file is never overwritten.")
        return False
    st = doc.results
    note = threshold_note(doc.threshold_origin, st.image_set.root.name if st else "", st.count if st else 0)
    try:
        new = write_with_threshold(model, target, doc.image_threshold, doc.pixel_threshold, note,
                                   getattr(doc, "review_from", math.nan))
    except (OSError, ValueError, ModelFileError) as exc:
        doc.report_error(f"Could not save {Path(target).name}: {exc}")
        return False
    doc.replace_model(new, Path(target).name)
    settings.add_recent("models", target)
    doc.show_status(f"Saved {target}", 8000)
    return True
