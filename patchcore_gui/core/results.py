"""Plain result types passed from the engine to the CLI, the tests and the GUI."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .datasets import ImageSet
from .path_list import path_strings


@dataclass(frozen=True)
class BatchResult:
    """What the streaming predictor yields for one batch.

    Attributes:
        indices: position of each image in the run's path list, int64 (B,).
        paths: the image paths, as strings.
        scores: raw image scores (max patch score), float32 (B,); NaN on error rows.
        grids: low-resolution patch-score grids, float16 (B, gh, gw); NaN on error rows.
            The full-resolution map is rebuilt on demand with ``anomaly_map``.
        errors: one-line reason per image, "" when the image was scored.
        labels: ground-truth label per image (0 good, 1 defect, -1 unknown), int8 (B,).
    """

    indices: np.ndarray
    paths: list[str]
    scores: np.ndarray
    grids: np.ndarray
    errors: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def ok_mask(self) -> np.ndarray:
        """Boolean mask of rows that were scored without error."""
        return np.array([not e for e in self.errors], dtype=bool)

    def subset(self, keep: np.ndarray) -> BatchResult:
        """The rows where the boolean mask ``keep`` is True, in order."""
        where = np.flatnonzero(keep)
        return BatchResult(indices=self.indices[where], paths=[self.paths[i] for i in where],
                           scores=self.scores[where], grids=self.grids[where],
                           errors=[self.errors[i] for i in where], labels=self.labels[where])


def work_list(
    images: Sequence[str | os.PathLike[str]] | ImageSet,
    labels: Sequence[int] | np.ndarray | None = None,
    skip: Sequence[int] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What a scorer (``iter_predict`` and its drop-ins) works through.

    Returns the paths as ``str`` (a run file's ``PathList`` hands its own strings: no
    ``Path`` per row, URIs intact), the labels as int8 (an ``ImageSet``'s own, else
    ``labels``, else -1 for unknown) and the indices still to score (all but ``skip``),
    in order.
    """
    if isinstance(images, ImageSet):
        paths = path_strings(images.paths)
        labels = images.labels
    else:
        paths = [os.fspath(p) for p in images]
    lab = np.full(len(paths), -1, dtype=np.int8) if labels is None else np.asarray(labels, dtype=np.int8)
    todo = np.arange(len(paths), dtype=np.int64)
    if skip is not None and len(skip):
        todo = np.setdiff1d(todo, np.asarray(skip, dtype=np.int64))
    return paths, lab, todo
