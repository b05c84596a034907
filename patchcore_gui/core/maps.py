"""Anomaly maps from patch-score grids (docs/patchcore-spec.md section 4).

The (h, w) grid of patch scores is upsampled bilinearly (``align_corners=False``) to
the crop size and smoothed with a Gaussian, sigma 4, scipy's defaults (reflect,
truncate 4.0): exactly the reference's ``RescaleSegmentor``.
"""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=8)
def map_operator(n: int, size: int, sigma: float = SMOOTHING_SIGMA) -> torch.Tensor:
    """(size, n) float64 matrix M with ``M @ column`` = blur(upsample(column)) in 1-D.

    Bilinear upsampling (``align_corners=False``) and scipy's Gaussian (reflect mode,
    truncate 4) are both linear and separable, so a whole map is ``M @ grid @ M.T``:
    two small matrix products, which run on the GPU beside the model instead of a
    CPU filter per image. Built by pushing the identity through the reference ops.
    """
    eye = torch.eye(n, dtype=torch.float64)
    # Each column of the identity as a (1, 1, n, 1) image, upsampled along its length.
    up = F.interpolate(eye.T[:, None, :, None], size=(size, 1), mode="bilinear", align_corners=False)
    up = up[:, 0, :, 0].T.numpy()  # (size, n)
    return torch.from_numpy(ndimage.gaussian_filter1d(up, sigma=sigma, axis=0, mode="reflect"))


def anomaly_maps_torch(grids: torch.Tensor, size: int, sigma: float = SMOOTHING_SIGMA) -> torch.Tensor:
    """(B, h, w) grids -> (B, size, size) float32 maps on the grids' device.

    The same maps as :func:`anomaly_maps` (to float32 rounding), as ``Mh @ g @ Mw.T``.
    """
    g = grids.to(torch.float32)
    if g.ndim == 2:
        g = g[None]
    h, w = int(g.shape[-2]), int(g.shape[-1])
    mh = map_operator(h, size, sigma).to(g.device, torch.float32)
    mw = mh if w == h else map_operator(w, size, sigma).to(g.device, torch.float32)
    return mh @ g @ mw.T
