"""The app's decision rule, in one place: an image is NG when its score is above the threshold.

Strictly greater: a score equal to the threshold is OK (the threshold is the largest
score still accepted). A NaN score (an image that could not be scored) is never NG,
and a NaN threshold (none set) makes nothing NG; callers that need a third word
("error", "no threshold") decide it before asking for the verdict.

Every place that decides NG calls this module: the predict CSV, the reports, the
metrics (``core/metrics.py``), the window's results table, image header and metrics
panel. A later issue adds a review band (scores near the threshold) here.

Note that the ROC / PR curves in ``core/metrics.py`` follow scikit-learn's
``score >= t`` convention for their operating points; that is a property of the
curves, not the app's rule.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

OK, NG = "OK", "NG"


def is_ng(score: float, threshold: float) -> bool:
    """True when ``score > threshold``; False for a NaN score or a NaN threshold."""
    # NaN compares False with anything, which is exactly the rule for both NaN cases.
    return bool(float(score) > float(threshold))


def ng_mask(scores: ArrayLike, threshold: float) -> np.ndarray:
    """Boolean array, True where the score is NG (``score > threshold``; NaN is never NG)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.greater(s, float(threshold))


def verdict(score: float, threshold: float) -> str:
    """``"NG"`` or ``"OK"``; ``""`` when the score or the threshold is not finite.

    A non-finite score has no verdict (the image was not scored); a non-finite
    threshold gives none either (the CSV leaves the cell empty rather than call every
    image OK).
    """
    if not math.isfinite(float(score)) or not math.isfinite(float(threshold)):
        return ""
    return NG if is_ng(score, threshold) else OK


def count_ng(sorted_scores: np.ndarray, threshold: float) -> int:
    """How many of ``sorted_scores`` (ascending, NaN last as ``np.sort`` leaves them) are NG.

    The same rule as :func:`ng_mask` in O(log n), for panels that recount on every
    threshold move: ``side="right"`` puts scores equal to the threshold on the OK side.
    NaN scores are not counted; a NaN threshold counts nothing.
    """
    s = np.asarray(sorted_scores)
    if s.size == 0 or math.isnan(float(threshold)):
        return 0
    # np.sort puts NaN last; searchsorted(nan, "left") finds where they start.
    end = int(np.searchsorted(s, np.nan, side="left"))
    return max(0, end - int(np.searchsorted(s, float(threshold), side="right")))
