"""The pixels the PRO metric integrates: good pixels sorted, defect pixels weighted by region.

PRO (``metrics.pro_score``) averages the overlap over connected ground-truth regions, so
each defect pixel weighs 1 / (its region's area x the number of regions). This module
labels the regions and turns the pixels of all images into the two sorted arrays the
area integration looks scores up in; the integration itself stays in ``metrics.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

# MVTec AD labels ground-truth regions with a 3x3 structure of ones (8-connectivity);
# using the same structure keeps our PRO comparable with published numbers.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class ProPixels(NamedTuple):
    """All good pixel scores ascending, defect pixel scores ascending and their suffix weights."""

    ok_sorted: np.ndarray  # float32, ascending
    d_scores: np.ndarray  # float32, ascending (stable order)
    suffix: np.ndarray  # suffix[i] = total region weight of defect pixels from sorted position i up


def pro_pixels(pairs: list[tuple[np.ndarray, np.ndarray | None]]) -> ProPixels | None:
    """Label the defect regions of every (map, defect mask) pair and sort the pixels.

    NaN map pixels become -inf (the lowest score, never detected). Returns None when there
    is no defect region or no good pixel (PRO is then undefined). Memory is one float32
    buffer of all pixels for the good ones.

    Raises:
        ValueError: on a map that is not 2-D.
    """
    total = sum(amap.size for amap, _ in pairs)
    ok_buf = np.empty(total, dtype=np.float32)
    n_ok = 0
    defect_scores: list[np.ndarray] = []
    defect_region: list[np.ndarray] = []  # global region index of each defect pixel
    region_areas: list[np.ndarray] = []
    n_regions = 0
    for i, (amap, defect) in enumerate(pairs):
        if amap.ndim != 2:
            raise ValueError(f"image {i}: PRO needs 2-D maps, got shape {amap.shape}")
        values = np.asarray(amap, dtype=np.float32)
        if np.isnan(values).any():
            values = np.where(np.isnan(values), np.float32(-np.inf), values)
        if defect is None or not defect.any():
            ok_values = values.ravel()
        else:
            labeled, count = ndimage.label(defect, structure=_EIGHT_CONNECTED)
            is_defect = labeled > 0
            ok_values = values[~is_defect]
            ids = labeled[is_defect]
            defect_scores.append(values[is_defect])
            defect_region.append(ids.astype(np.int64) - 1 + n_regions)
            region_areas.append(np.bincount(ids, minlength=count + 1)[1:])
            n_regions += count
        ok_buf[n_ok : n_ok + ok_values.size] = ok_values
        n_ok += ok_values.size
    if n_regions == 0 or n_ok == 0:
        return None

    ok_sorted = ok_buf[:n_ok]
    ok_sorted.sort()  # ascending, in place

    d_scores = np.concatenate(defect_scores)
    areas = np.concatenate(region_areas).astype(np.float64)
    d_weights = 1.0 / (areas[np.concatenate(defect_region)] * n_regions)
    order = np.argsort(d_scores, kind="stable")
    d_scores = d_scores[order]
    d_weights = d_weights[order]
    # suffix[i] = total weight of defect pixels from sorted position i up; summed from the
    # highest score down, in the same order as the reference cumulative sum.
    suffix = np.zeros(d_scores.size + 1, dtype=np.float64)
    suffix[:-1] = np.cumsum(d_weights[::-1])[::-1]
    return ProPixels(ok_sorted, d_scores, suffix)
