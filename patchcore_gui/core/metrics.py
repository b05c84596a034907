"""Evaluation metrics for anomaly scores: ROC/AUROC, pixel AUROC, PRO, F1 and thresholds.

Conventions shared by every function here:

* Image labels: ``0`` = good, any value ``> 0`` = defect, a negative value (the app uses
  ``-1``) or NaN = unknown. Entries with an unknown label or a NaN score are ignored, so the
  results for a run with failed or unlabelled images are those of the remaining images.
* Decision rule of the app: an image is NG when ``score > threshold`` (strictly greater).
  :func:`confusion`, :func:`precision_recall_f1` and
  :func:`threshold_for_false_reject_rate` use it. :func:`roc_curve` and
  :func:`f1_optimal_threshold` follow the scikit-learn convention ``score >= threshold``
  instead, because their thresholds are the observed scores themselves.
* Pixel metrics take a sequence of (H, W) anomaly maps and a sequence of ground-truth masks
  of the same shapes (or 3-D arrays stacking them). A mask pixel is a defect when its value is
  ``> 0.5``; a mask given as ``None`` means an all-good image.

Only numpy and scipy are used, so that the CLI and headless tests need no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .pro_regions import ProPixels, pro_pixels
from .verdict import ng_mask, review_mask

__all__ = [
    "auroc",
    "confusion",
    "f1_optimal_threshold",
    "image_auroc",
    "pixel_auroc",
    "precision_recall_f1",
    "precision_recall_f1_counts",
    "pro_score",
    "review_counts",
    "roc_curve",
    "threshold_for_false_reject_rate",
]

# Pixel metrics work through the data in chunks of this many values so that the temporary
# int64 index arrays of ``searchsorted`` stay small (8 MiB) even for ~200 megapixel runs.
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- helpers


def _clean(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return (float64 scores, bool is_defect) with unknown labels and NaN scores removed."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} != {y.size}")
    # ``y >= 0`` is False for NaN too, so NaN labels count as unknown.
    keep = ~np.isnan(s) & (y >= 0)
    return s[keep], y[keep] > 0


def _distinct_ends(sorted_values: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal values in a sorted array."""
    # Comparing neighbours (not np.diff) so that runs of +inf/-inf are not split by inf - inf = nan.
    change = np.flatnonzero(sorted_values[1:] != sorted_values[:-1])
    return np.append(change, sorted_values.size - 1) if sorted_values.size else change


def _mann_whitney(pos: np.ndarray, neg_sorted: np.ndarray) -> float:
    """AUROC = P(pos > neg) + 0.5 P(pos == neg) from ascending-sorted negatives.

    Counting with ``searchsorted`` avoids ranking the concatenation of both classes, which
    would need an int64 permutation of every pixel; here only ``neg_sorted`` is held.
    """
    n_pos, n_neg = pos.size, neg_sorted.size
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    wins = 0  # pairs with neg < pos; Python ints so that ~1e16 pair counts stay exact
    ties = 0  # pairs with neg == pos
    for start in range(0, n_pos, _CHUNK):
        chunk = pos[start : start + _CHUNK]
        below = np.searchsorted(neg_sorted, chunk, side="left")
        below_or_equal = np.searchsorted(neg_sorted, chunk, side="right")
        wins += int(below.sum())
        ties += int((below_or_equal - below).sum())
    # Integer numerator and denominator: one correctly rounded division at the end.
    return (2 * wins + ties) / (2 * n_pos * n_neg)


def _image_pairs(maps: Any, masks: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Pair up anomaly maps with boolean defect masks (None = all good), checking shapes."""

    def as_list(items: Any) -> list[Any]:
        # A single 2-D array is one image, not a sequence of H one-row images: iterating
        # it would silently give the same AUROC but break the connected regions of PRO.
        if isinstance(items, np.ndarray) and items.ndim == 2:
            return [items]
        return list(items) if isinstance(items, Iterable) else [items]

    map_list, mask_list = as_list(maps), as_list(masks)
    if len(map_list) != len(mask_list):
        raise ValueError(f"{len(map_list)} anomaly maps but {len(mask_list)} masks")
    pairs: list[tuple[np.ndarray, np.ndarray | None]] = []
    for i, (amap, mask) in enumerate(zip(map_list, mask_list, strict=True)):
        amap = np.asarray(amap)
        if mask is None:
            pairs.append((amap, None))
            continue
        defect = np.asarray(mask) > 0.5
        if defect.shape != amap.shape:
            raise ValueError(f"image {i}: map shape {amap.shape} != mask shape {defect.shape}")
        pairs.append((amap, defect))
    return pairs


def _largest_count_within(fraction: float, total: int) -> int:
    """Largest integer k <= total with k / total <= fraction.

    Computed by checking the division itself, because ``floor(fraction * total)`` can be one
    too small (0.29 * 100 == 28.999999999999996).
    """
    k = min(int(np.floor(fraction * total)), total)
    while k < total and (k + 1) / total <= fraction:
        k += 1
    while k > 0 and k / total > fraction:
        k -= 1
    return k


# --------------------------------------------------------------------------- image level


def roc_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic, like ``sklearn.metrics.roc_curve``.

    A sample is predicted defective when ``score >= threshold``. The curve has one point per
    distinct score (no intermediate points are dropped), preceded by the point (0, 0) with
    threshold ``+inf``.

    Args:
        scores: anomaly scores, higher = more anomalous.
        labels: 0 good, > 0 defect; entries with a negative or NaN label, or a NaN score,
            are ignored.

    Returns:
        ``(fpr, tpr, thresholds)``, float64 arrays of equal length with thresholds strictly
        decreasing. ``fpr`` is all NaN when there is no good sample and ``tpr`` all NaN when
        there is no defect sample (the rate is 0/0).
    """
    s, y = _clean(scores, labels)
    order = np.argsort(s, kind="stable")[::-1]
    s_desc, y_desc = s[order], y[order]
    ends = _distinct_ends(s_desc)
    tps = np.cumsum(y_desc, dtype=np.int64)[ends]
    fps = (ends + 1) - tps
    tps = np.concatenate(([0], tps))
    fps = np.concatenate(([0], fps))
    thresholds = np.concatenate(([np.inf], s_desc[ends]))
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    tpr = tps / n_pos if n_pos else np.full(tps.shape, np.nan)
    fpr = fps / n_neg if n_neg else np.full(fps.shape, np.nan)
    return fpr.astype(np.float64), tpr.astype(np.float64), thresholds.astype(np.float64)


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve, ties counted as half (Mann-Whitney U / (n_pos * n_neg)).

    Args:
        scores: anomaly scores, higher = more anomalous.
        labels: 0 good, > 0 defect; negative/NaN labels and NaN scores are ignored.

    Returns:
        The AUROC in [0, 1], or NaN when only one class (or nothing) remains.
    """
    s, y = _clean(scores, labels)
    return _mann_whitney(s[y], np.sort(s[~y]))


def image_auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Image-level AUROC of per-image scores; same semantics as :func:`auroc`."""
    return auroc(scores, labels)


def f1_optimal_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float, float, float]:
    """Threshold among the scores that maximises F1, predicting defect when ``score >= t``.

    Note the inclusive rule: feeding the returned threshold to :func:`confusion` (which uses
    the app's strict ``score > t``) classifies samples scoring exactly ``t`` as good. Use
    ``np.nextafter(t, -np.inf)`` to get the same split under the strict rule.

    Args:
        scores: anomaly scores, higher = more anomalous.
        labels: 0 good, > 0 defect; negative/NaN labels and NaN scores are ignored.

    Returns:
        ``(threshold, f1, precision, recall)``. When several thresholds tie on F1 the highest
        one is returned (fewest rejections). All four are NaN when there is no defect sample,
        because every threshold then has F1 = 0 and none is meaningful.
    """
    s, y = _clean(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0:
        nan = float("nan")
        return nan, nan, nan, nan
    order = np.argsort(s, kind="stable")[::-1]
    s_desc, y_desc = s[order], y[order]
    ends = _distinct_ends(s_desc)
    tp = np.cumsum(y_desc, dtype=np.int64)[ends]
    predicted = ends + 1
    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (predicted + n_pos); the denominator is >= 1.
    f1 = 2.0 * tp / (predicted + n_pos)
    best = int(np.argmax(f1))  # first maximum in descending order = highest threshold
    return (
        float(s_desc[ends[best]]),
        float(f1[best]),
        float(tp[best] / predicted[best]),
        float(tp[best] / n_pos),
    )


def confusion(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, int]:
    """Confusion counts under the app's rule: NG (predicted defect) when ``score > threshold``.

    A score equal to the threshold is OK. Entries with a negative/NaN label or a NaN score are
    ignored.

    Returns:
        ``{"tp", "fp", "tn", "fn"}`` where positive = defect (label > 0).
    """
    s, y = _clean(scores, labels)
    ng = ng_mask(s, threshold)
    tp = int(np.count_nonzero(ng & y))
    fp = int(np.count_nonzero(ng & ~y))
    fn = int(np.count_nonzero(~ng & y))
    tn = int(np.count_nonzero(~ng & ~y))
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def precision_recall_f1(
    scores: ArrayLike, labels: ArrayLike, threshold: float
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the defect class with NG when ``score > threshold``.

    Each ratio whose denominator is zero is reported as 0.0 (e.g. precision when nothing is
    predicted NG), so the GUI never shows NaN for an empty selection.
    """
    c = confusion(scores, labels, threshold)
    return precision_recall_f1_counts(c["tp"], c["fp"], c["fn"])


def precision_recall_f1_counts(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """:func:`precision_recall_f1` from confusion counts (a zero denominator gives 0.0)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return float(precision), float(recall), float(f1)


def review_counts(scores: ArrayLike, labels: ArrayLike, threshold: float, review_from: float) -> dict[str, int]:
    """Good and defective images sent to review (``review_from < score <= threshold``).

    The band does not change :func:`confusion` (counts at the threshold: a REVIEW image is
    on the OK side there) nor the AUROC; this says how many of each class a person sees.
    Unknown labels and NaN scores are ignored; ``review_from`` NaN gives zeros.

    Returns:
        ``{"good", "defect"}``.
    """
    s, y = _clean(scores, labels)
    band = review_mask(s, threshold, review_from)
    return {"good": int(np.count_nonzero(band & ~y)), "defect": int(np.count_nonzero(band & y))}


def threshold_for_false_reject_rate(scores: ArrayLike, labels: ArrayLike, max_frr: float) -> float:
    """Lowest threshold whose false-reject rate on good samples is at most ``max_frr``.

    The false-reject rate at threshold t is the fraction of good (label 0) samples with
    ``score > t`` (the app's NG rule). The result is therefore a good sample's score: the
    (k+1)-th highest good score, where k is the largest count with k / n_good <= max_frr.
    Defect samples do not influence it; unknown labels and NaN scores are ignored.

    Args:
        scores: anomaly scores.
        labels: 0 good, > 0 defect, < 0 unknown.
        max_frr: the allowed fraction of rejected good samples, 0..1 (not percent).

    Returns:
        The threshold; ``-inf`` when every good sample may be rejected (k = n_good, e.g.
        ``max_frr == 1``), NaN when there is no good sample.

    Raises:
        ValueError: if ``max_frr`` is not within [0, 1].
    """
    if not 0.0 <= max_frr <= 1.0:  # also rejects NaN
        raise ValueError(f"max_frr must be a fraction in [0, 1], got {max_frr!r}")
    s, y = _clean(scores, labels)
    good = np.sort(s[~y])
    n = good.size
    if n == 0:
        return float("nan")
    k = _largest_count_within(max_frr, n)
    if k >= n:
        return float("-inf")
    # With t = good_desc[k]: at most k good scores are > t, and any lower t would also
    # reject good_desc[k] itself, making k + 1.
    return float(good[n - 1 - k])


# --------------------------------------------------------------------------- pixel level


def pixel_auroc(maps: Any, masks: Any) -> float:
    """AUROC over all pixels of all images, good images included.

    Args:
        maps: sequence of (H, W) anomaly maps (sizes may differ between images), or an
            (N, H, W) array; a single 2-D array is one image.
        masks: matching ground-truth masks, defect where ``> 0.5``; ``None`` entries mean an
            all-good image.

    Returns:
        The AUROC, or NaN when all valid pixels belong to one class. NaN map pixels are
        ignored. Scores are compared in float32, the precision the maps are produced in.

    Memory: one float32 buffer of all pixels plus chunked temporaries (about 0.85 GB for 200
    images of 1024 x 1024), instead of an int64 argsort of the concatenation.
    """
    pairs = _image_pairs(maps, masks)
    total = sum(amap.size for amap, _ in pairs)
    # Good pixels fill the buffer from the front, defect pixels from the back, so one
    # allocation holds both classes without knowing their counts in advance.
    buf = np.empty(total, dtype=np.float32)
    n_neg = n_pos = 0
    for amap, defect in pairs:
        values = np.asarray(amap, dtype=np.float32).ravel()
        valid = ~np.isnan(values)
        if defect is None:
            neg, pos = values[valid], values[:0]
        else:
            d = defect.ravel()
            neg, pos = values[valid & ~d], values[valid & d]
        buf[n_neg : n_neg + neg.size] = neg
        n_neg += neg.size
        buf[total - n_pos - pos.size : total - n_pos] = pos
        n_pos += pos.size
    neg_sorted = buf[:n_neg]
    neg_sorted.sort()  # in place: no second copy of the good pixels
    return _mann_whitney(buf[total - n_pos :], neg_sorted)


def pro_score(maps: Any, masks: Any, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD definition).

    For a threshold t (pixel anomalous when ``score >= t``), PRO(t) is the overlap
    |region & anomalous| / |region| averaged over all connected ground-truth regions of all
    images (8-connectivity, as in the MVTec AD evaluation code), and FPR(t) is the fraction of
    all good pixels of all images that are anomalous. The curve has one point per distinct
    pixel score, starts at (0, 0) and is integrated with the trapezoid rule up to
    FPR = ``fpr_limit``, the curve being linearly interpolated at exactly that FPR; the area is
    divided by ``fpr_limit`` so that a perfect map scores 1.

    The result equals the exact sorted-cumulative method of the MVTec AD reference (every pixel
    sorted by score, weights 1/area/num_regions and 1/num_ok_pixels, cumulative sums, last
    index per distinct score), without a threshold grid. It is computed in an equivalent form
    that needs no permutation of all pixels: between two consecutive distinct good-pixel
    scores the FPR does not move, so the area is a sum over good pixels of
    (PRO(> u) + PRO(>= u)) / 2 / num_ok_pixels, u being the pixel's score, plus the
    interpolated part of the tie block that straddles ``fpr_limit``. PRO(.) is looked up in
    the sorted defect pixels. Memory is one float32 buffer of all pixels.

    Args:
        maps: sequence of (H, W) anomaly maps, or an (N, H, W) array.
        masks: matching ground-truth masks, defect where ``> 0.5``; ``None`` = all good.
        fpr_limit: upper FPR integration limit, in (0, 1].

    Returns:
        The normalised PRO area in [0, 1]; NaN when there is no defect region or no good
        pixel. NaN map pixels are treated as the lowest possible score (never detected).

    Raises:
        ValueError: on an invalid ``fpr_limit``, mismatched shapes or maps that are not 2-D.
    """
    if not 0.0 < fpr_limit <= 1.0:  # also rejects NaN
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}")
    pixels = pro_pixels(_image_pairs(maps, masks))
    if pixels is None:
        return float("nan")
    return _pro_area(pixels, fpr_limit)


def _pro_area(pixels: ProPixels, fpr_limit: float) -> float:
    """The PRO curve's area up to ``fpr_limit`` divided by it (see :func:`pro_score`)."""
    ok_sorted, d_scores, suffix = pixels
    n_ok = ok_sorted.size

    def pro_at_least(t: np.ndarray | np.floating) -> np.ndarray:
        return suffix[np.searchsorted(d_scores, t, side="left")]

    def pro_above(t: np.ndarray | np.floating) -> np.ndarray:
        return suffix[np.searchsorted(d_scores, t, side="right")]

    # k = most good pixels that may be anomalous with FPR still <= fpr_limit.
    k = _largest_count_within(fpr_limit, n_ok)
    if k >= n_ok:
        n_full, partial = n_ok, None
    else:
        u = ok_sorted[n_ok - 1 - k]  # the good score at which the FPR passes the limit
        n_above = n_ok - int(np.searchsorted(ok_sorted, u, side="right"))
        n_at_least = n_ok - int(np.searchsorted(ok_sorted, u, side="left"))
        n_full, partial = n_above, (u, n_above, n_at_least)

    # Good pixels whose whole FPR step lies within the limit, highest scores first.
    area = 0.0
    full = ok_sorted[n_ok - n_full :]
    for start in range(0, full.size, _CHUNK):
        chunk = full[start : start + _CHUNK]
        area += float(np.sum(pro_above(chunk) + pro_at_least(chunk))) * 0.5
    area /= n_ok

    if partial is not None:
        u, n_above, n_at_least = partial
        x0, x1 = n_above / n_ok, n_at_least / n_ok
        if fpr_limit > x0:
            y0, y1 = float(pro_above(u)), float(pro_at_least(u))
            y_limit = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_limit) * (fpr_limit - x0)
    return float(area / fpr_limit)
