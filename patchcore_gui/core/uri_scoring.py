"""Scoring images named by URIs, one engine batch at a time: the Ray replicas and the local engine.

The local engine's ``iter_predict`` opens local files. For a batch that names URIs, the
images are first fetched into a temporary folder (``uri_listing.local_copies``), then
scored there by ``iter_predict`` as one batch: the same images in the same order give
the same tensor, so the same scores as a local copy of the folder would; an image that
cannot be fetched is an error row ("file not found", "cannot read image: ...").

:func:`uri_iter_predict` is the local engine's scorer for ``predict --images URI`` (and
for resuming such a run): a drop-in for ``iter_predict`` that hands lists of local
paths to ``iter_predict`` itself, unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .datasets import ImageSet
from .results import BatchResult
from .uri_listing import is_uri, local_copies, path_texts

if TYPE_CHECKING:
    from .model import PatchCoreModel

__all__ = ["score_batch", "uri_iter_predict"]


def score_batch(model: PatchCoreModel, indices: np.ndarray, names: list[str],
                grid_dtype: type = np.float16) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Score one engine batch of local paths and / or URIs: (indices, scores, grids, errors).

    ``indices`` are the images' places in the run; the results come back in the batch's order.
    """
    from .engine import iter_predict

    out_idx, out_scores, out_grids, out_err = [], [], [], []
    with local_copies(names) as (local, fetch_errors):
        # One engine batch exactly as the local engine forms it: same images, same order,
        # so the backbone sees the same tensor and gives the same scores.
        for r in iter_predict(model, local, batch_size=len(local), num_workers=0, grid_dtype=grid_dtype):
            errors = list(r.errors)
            scores = r.scores.copy()
            grids = r.grids.copy()
            for j, e in fetch_errors.items():
                errors[j], scores[j], grids[j] = e, np.nan, np.nan
            out_idx.append(np.asarray(indices, dtype=np.int64)[r.indices])
            out_scores.append(scores)
            out_grids.append(grids)
            out_err.extend(errors)
    return (np.concatenate(out_idx), np.concatenate(out_scores).astype(np.float32),
            np.concatenate(out_grids), out_err)


def uri_iter_predict(
    model: PatchCoreModel,
    images: Sequence[str | os.PathLike[str]] | ImageSet,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    batch_size: int | None = 8,
    num_workers: int | None = 0,
    cancel: threading.Event | None = None,
    grid_dtype: type = np.float16,
    skip: Sequence[int] | None = None,
) -> Iterator[BatchResult]:
    """``engine.iter_predict`` that also reads URIs; same arguments, same results.

    A listing of local paths goes to ``iter_predict`` as it is (a listing is all URIs or
    all paths: the first one decides). URIs are fetched a batch at a time and scored in
    the local engine's batches (``batch_size`` None: the engine's default).
    """
    from .engine import iter_predict

    listed = images.paths if isinstance(images, ImageSet) else images
    if not len(listed) or not is_uri(path_texts(listed[:1])[0]):
        yield from iter_predict(model, images, labels=labels, batch_size=batch_size, num_workers=num_workers,
                                cancel=cancel, grid_dtype=grid_dtype, skip=skip)
        return
    paths = path_texts(listed)
    if isinstance(images, ImageSet):
        labels = images.labels
    if batch_size is None:
        from .batching import default_batch_size

        batch_size = default_batch_size(model)
    n = len(paths)
    lab = np.full(n, -1, dtype=np.int8) if labels is None else np.asarray(labels, dtype=np.int8)
    todo = np.arange(n, dtype=np.int64)
    if skip is not None and len(skip):
        todo = np.setdiff1d(todo, np.asarray(skip, dtype=np.int64))
    for start in range(0, len(todo), max(1, int(batch_size))):
        if cancel is not None and cancel.is_set():
            return
        part = todo[start : start + batch_size]
        names = [paths[i] for i in part]
        idx, scores, grids, errors = score_batch(model, part, names, grid_dtype)
        yield BatchResult(indices=idx, paths=names, scores=scores, grids=grids, errors=errors, labels=lab[idx])
