"""The app's decision rule, in one place: OK, REVIEW or NG from a score and two thresholds.

* ``score > threshold`` is NG. Strictly greater: a score equal to the threshold is not
  NG (the threshold is the largest score still accepted).
* With a review band (``review_from`` finite): ``review_from < score <= threshold`` is
  REVIEW (a person looks at it), ``score <= review_from`` OK. A score equal to
  ``review_from`` is OK, one equal to the threshold REVIEW.
* ``review_from`` NaN: no band, two verdicts, exactly as before the band existed.
* A NaN score (an image that could not be scored) is never NG nor REVIEW, and a NaN
  threshold (none set) makes nothing NG; callers that need a third word ("error",
  "no threshold") decide it before asking for the verdict.

A ``review_from`` above the threshold is refused where it is set
(``core/thresholds.check_thresholds``, ``ValueError``); here such a band is simply
empty (every score above the threshold is NG first), never reinterpreted.

Every place that decides a verdict calls this module: the predict CSV, the reports, the
metrics (``core/metrics.py``), the window's results table, image header and panels.

Note that the ROC / PR curves in ``core/metrics.py`` follow scikit-learn's
``score >= t`` convention for their operating points; that is a property of the
curves, not the app's rule.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

OK, NG, REVIEW = "OK", "NG", "REVIEW"
#: Verdict codes of :func:`verdict_codes` (``core/result_table.py`` uses the same numbers).
#: CODE_NONE: no verdict (NaN score).
CODE_OK, CODE_NG, CODE_NONE, CODE_REVIEW = 0, 1, 2, 4

NAN = float("nan")


def is_ng(score: float, threshold: float) -> bool:
    """True when ``score > threshold``; False for a NaN score or a NaN threshold."""
    # NaN compares False with anything, which is exactly the rule for both NaN cases.
    return bool(float(score) > float(threshold))


def is_review(score: float, threshold: float, review_from: float = NAN) -> bool:
    """True when ``review_from < score <= threshold``; False without a band or for NaN."""
    # NaN compares False: no band, no threshold or no score is never REVIEW.
    s = float(score)
    return bool(s > float(review_from)) and bool(s <= float(threshold))


def ng_mask(scores: ArrayLike, threshold: float) -> np.ndarray:
    """Boolean array, True where the score is NG (``score > threshold``; NaN is never NG)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.greater(s, float(threshold))


def review_mask(scores: ArrayLike, threshold: float, review_from: float = NAN) -> np.ndarray:
    """Boolean array, True where ``review_from < score <= threshold`` (all False without a band)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.greater(s, float(review_from)) & np.less_equal(s, float(threshold))


def verdict(score: float, threshold: float, review_from: float = NAN) -> str:
    """``"NG"``, ``"REVIEW"`` or ``"OK"``; ``""`` when the score or the threshold is not finite.

    A non-finite score has no verdict (the image was not scored); a non-finite
    threshold gives none either (the CSV leaves the cell empty rather than call every
    image OK). ``review_from`` NaN: no band (OK / NG only).
    """
    if not math.isfinite(float(score)) or not math.isfinite(float(threshold)):
        return ""
    if is_ng(score, threshold):
        return NG
    return REVIEW if is_review(score, threshold, review_from) else OK


def verdict_code(score: float, threshold: float, review_from: float = NAN) -> int:
    """One score's code (CODE_OK / CODE_REVIEW / CODE_NG; CODE_NONE for a NaN score).

    The scalar :func:`verdict_codes`, for a table cell; a NaN threshold makes every
    scored image OK, as :func:`ng_mask` does.
    """
    s = float(score)
    if math.isnan(s):
        return CODE_NONE
    if is_ng(s, threshold):
        return CODE_NG
    return CODE_REVIEW if is_review(s, threshold, review_from) else CODE_OK


def verdict_codes(scores: ArrayLike, threshold: float, review_from: float = NAN) -> np.ndarray:
    """int8 code per score: CODE_NG (``ng_mask``), CODE_REVIEW (``review_mask``), CODE_NONE
    for NaN scores, CODE_OK otherwise (also everything scored under a NaN threshold)."""
    s = np.asarray(scores, dtype=np.float64)
    code = np.where(ng_mask(s, threshold), CODE_NG, CODE_OK).astype(np.int8)
    code[review_mask(s, threshold, review_from)] = CODE_REVIEW
    code[np.isnan(s)] = CODE_NONE
    return code


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


def count_review(sorted_scores: np.ndarray, threshold: float, review_from: float = NAN) -> int:
    """How many of ``sorted_scores`` (ascending, NaN last) are REVIEW, in O(log n).

    The same rule as :func:`review_mask`: scores equal to ``review_from`` are OK
    (``side="right"``), scores equal to the threshold REVIEW. 0 without a band, under a
    NaN threshold, or when the band is empty (``review_from >= threshold``).
    """
    s = np.asarray(sorted_scores)
    thr, rf = float(threshold), float(review_from)
    if s.size == 0 or math.isnan(thr) or math.isnan(rf):
        return 0
    end = int(np.searchsorted(s, np.nan, side="left"))
    upto_thr = min(end, int(np.searchsorted(s, thr, side="right")))
    upto_rf = min(end, int(np.searchsorted(s, rf, side="right")))
    return max(0, upto_thr - upto_rf)

