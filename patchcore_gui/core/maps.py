"""Anomaly maps from patch-score grids (spec section 4).

The (h, w) grid of patch scores is upsampled bilinearly (``align_corners=False``) to
the crop size and smoothed with a Gaussian, sigma 4, scipy's defaults (reflect,
truncate 4.0): exactly the reference's ``RescaleSegmentor``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

#: Gaussian sigma of the reference's segmentor.
SMOOTHING_SIGMA = 4.0


def anomaly_maps(grids: np.ndarray, size: int, sigma: float = SMOOTHING_SIGMA) -> np.ndarray:
    """(B, h, w) patch-score grids -> (B, size, size) float32 anomaly maps."""
    g = torch.from_numpy(np.ascontiguousarray(grids, dtype=np.float32))
    if g.ndim == 2:
        g = g[None]
    up = F.interpolate(g[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    up_np = up.numpy()
    return np.stack([ndimage.gaussian_filter(m, sigma=sigma) for m in up_np]).astype(np.float32, copy=False)


def anomaly_map(grid: np.ndarray, size: int, sigma: float = SMOOTHING_SIGMA) -> np.ndarray:
    """One (h, w) grid -> (size, size) float32 map."""
    return anomaly_maps(np.asarray(grid)[None], size, sigma)[0]
