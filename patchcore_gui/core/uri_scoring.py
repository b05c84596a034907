"""Scoring images named by URIs, one engine batch at a time: the Ray replicas and the local engine.

The local engine's ``iter_predict`` opens local files. For batches that name URIs, the
images are first fetched into a temporary folder (``uri_listing.local_copies``), then
scored there by ``iter_predict`` in the local engine's batches: the same images in the
same order give the same tensors, so the same scores as a local copy of the folder
would; an image that cannot be fetched is an error row ("file not found", "cannot read
image: ...").

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
from .path_list import path_strings
from .results import BatchResult, work_list
from .uri_listing import is_uri, local_copies

if TYPE_CHECKING:
    from .model import PatchCoreModel

__all__ = ["CHUNK_BATCHES", "score_batches", "uri_iter_predict"]

#: Engine batches the local engine fetches at a time from URIs (the fetches of a chunk run
#: side by side; its batches are then decoded and scored as the local engine does).
CHUNK_BATCHES = 4


def score_batches(model: PatchCoreModel, indices: np.ndarray, names: list[str], batch_size: int,
                  grid_dtype: type = np.float16) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Score consecutive engine batches of local paths and / or URIs: (indices, scores, grids, errors).

    ``names`` are cut every ``batch_size`` as the local engine cuts its list (every batch
    full but the last), so each batch is the tensor the local engine would score. One
    ``iter_predict`` over them all: the next batch is decoded while one is computed, as
    locally. ``indices`` are the images' places in the run; results come in ``names``' order.
    """
    from .engine import iter_predict

    idx = np.asarray(indices, dtype=np.int64)
    out_idx, out_scores, out_grids, out_err = [], [], [], []
    with local_copies(names) as (local, fetch_errors):
        for r in iter_predict(model, local, batch_size=max(1, int(batch_size)), num_workers=0,
                              grid_dtype=grid_dtype):
            errors = list(r.errors)
            scores = r.scores.copy()
            grids = r.grids.copy()
            for j, pos in enumerate(r.indices.tolist()):
                if pos in fetch_errors:
                    errors[j], scores[j], grids[j] = fetch_errors[pos], np.nan, np.nan
            out_idx.append(idx[r.indices])
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
    if not len(listed) or not is_uri(path_strings(listed[:1])[0]):
        yield from iter_predict(model, images, labels=labels, batch_size=batch_size, num_workers=num_workers,
                                cancel=cancel, grid_dtype=grid_dtype, skip=skip)
        return
    paths, lab, todo = work_list(images, labels, skip)
    if batch_size is None:
        from .batching import default_batch_size

        batch_size = default_batch_size(model)
    bs = max(1, int(batch_size))
    step = bs * CHUNK_BATCHES
    for start in range(0, len(todo), step):
        if cancel is not None and cancel.is_set():
            return
        part = todo[start : start + step]
        idx, scores, grids, errors = score_batches(model, part, [paths[i] for i in part], bs, grid_dtype)
        for k in range(0, len(idx), bs):  # one result per engine batch, as iter_predict yields them
            sel = idx[k : k + bs]
            yield BatchResult(indices=sel, paths=[paths[i] for i in sel], scores=scores[k : k + bs],
                              grids=grids[k : k + bs], errors=errors[k : k + bs], labels=lab[sel])
