"""Plain result types passed from the engine to the CLI, the tests and the GUI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
