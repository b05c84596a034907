"""File > Open run: everything a saved run file needs to be shown again.

The table comes from ``RunFile.columns()``, the patch-score grids from
``iter_grids`` (in chunks, bounded memory), the thresholds from the run. The model is
the run's own model file, used only when it is still there and unchanged (SHA-256):
a different file would draw heatmaps the run never had. Without it the scores,
verdicts and reviews are still shown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.result_table import ResultTable
from patchcore_gui.core.run_file import RunFileError, file_sha256
from patchcore_gui.core.run_file_read import gc_paused

from .background import one_line
from .document import is_same_file
from .run_session import GuardedRunFile, open_run_file


@dataclass
class LoadedRun:
    """An opened run file and what the window shows of it."""

    store: GuardedRunFile
    #: Why it is read-only ("" when open for writing).
    readonly_note: str
    image_set: ImageSet
    results: ResultTable
    #: The run's model, or None when missing / changed / unreadable (``model_note`` says why).
    model: PatchCoreModel | None
    model_note: str
    summary: dict[str, Any]
    model_name: str
    image_threshold: float
    pixel_threshold: float
    threshold_origin: str
    batch_size: int
    status: str


def run_model(meta: dict[str, Any], current: PatchCoreModel | None) -> tuple[PatchCoreModel | None, str]:
    """The run's model (``current`` when it is that file) or None and the reason."""
    path = str(meta.get("model_path") or "")
    name = Path(path).name or "(unknown)"
    if not path or not Path(path).is_file():
        return None, (f"The run's model file {name} is missing ({path or 'not recorded'}): scores and verdicts "
                      "are shown; heatmaps and Resume need that file.")
    want = str(meta.get("model_sha256") or "")
    try:
        changed = bool(want) and file_sha256(path) != want
    except OSError as exc:
        return None, f"The run's model file {name} cannot be read ({exc.strerror or exc}): scores are shown."
    if changed:
        return None, (f"The run's model file {name} has changed since the run (SHA-256 differs): scores and "
                      "verdicts are shown; heatmaps and Resume are not, as they would come from another model.")
    if current is not None and current.path is not None and is_same_file(current.path, path):
        return current, ""
    try:
        return PatchCoreModel.load(path, device="cpu"), ""
    except Exception as exc:  # ModelFileError, OSError: say it, show the scores anyway
        return None, f"The run's model file {name} cannot be loaded ({one_line(exc)}): scores are shown."


def grid_reader(store: GuardedRunFile) -> Callable[[int], np.ndarray | None]:
    """``store.grid`` that gives None once the store is closed (another run replaced this one)."""

    def read(index: int) -> np.ndarray | None:
        try:
            return store.grid(index)
        except RunFileError:
            return None

    return read


def threshold_origin(store: GuardedRunFile, meta: dict[str, Any]) -> str:
    """Where the run's current threshold comes from, in a few words."""
    log = [c for c in store.threshold_log() if c.kind == "image"]
    if log:
        last = log[-1]
        return f"from the run file (last change: {last.note or 'no note'})"
    return f"from the run file (model: {meta.get('threshold_source') or '?'})"


def load_run(path: str | os.PathLike[str], current: PatchCoreModel | None) -> LoadedRun:
    """Open ``path`` (read-only when another window writes it) and read it for display.

    Raises RunFileError (not a run file...) or another exception with the store closed.
    """
    # Reading a million rows makes millions of short-lived row tuples, each a tracked
    # container: with the collector on they set off collections that walk everything
    # alive (once half the 1,000,000-row open, issue 15). Nothing made here is cyclic
    # garbage, and the caller freezes what stays afterwards (gc_freeze.settle).
    with gc_paused():
        return _load_run(path, current)


def _load_run(path: str | os.PathLike[str], current: PatchCoreModel | None) -> LoadedRun:
    store, note = open_run_file(path)
    try:
        meta = store.meta
        # One pass over the file for everything the table shows: each pass walks every
        # row's grid too (2 GB at 1,000,000 rows), ~0.5 s each.
        table = store.table()
        image_set = table.image_set
        results = ResultTable(image_set)
        # Grids are read from the file when an image is shown, not all at open: a cluster
        # run of 1,000,000 images would wait for and hold 1.5 GB of them (issue 15).
        results.restore(table.done, table.score, table.errors, table.operator, (),
                        grid_loader=grid_reader(store))
        model, model_note = run_model(meta, current)
        summary = dict(meta.get("model_summary") or {})
        name = Path(str(meta.get("model_path") or "model")).name
        if model is None:
            name += " (not available)"
        thr = store.image_threshold
        return LoadedRun(
            store=store, readonly_note=note, image_set=image_set, results=results, model=model,
            model_note=model_note, summary=summary, model_name=name, image_threshold=thr,
            pixel_threshold=store.pixel_threshold,
            threshold_origin=threshold_origin(store, meta) if math.isfinite(thr) else "",
            batch_size=int(store.settings.get("batch_size") or 0), status=store.status,
        )
    except BaseException:
        store.close()
        raise
