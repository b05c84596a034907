"""Default thresholds from out-of-bank scores of the good training images, at a stated rate.

At training every readable good image is scored against the final memory bank with its
own rows left out (``core.out_of_bank``), exactly as prediction scores an image, and all
these scores are stored. The default image threshold is the score that a stated share of
good parts (the false-reject rate, default 1 %) exceeds, estimated from them
(``threshold_for_rate``); the pixel threshold is the same estimate on the images'
anomaly-map maxima. The rule text says how each was set.

Models from before (a held-out slice and ``max(mean + 3 std, max)``, ``threshold_rule``)
keep their thresholds and rule; ``threshold_rule`` stays for them and for teaching.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

#: The default share of good parts a calibrated threshold rejects.
DEFAULT_FALSE_REJECT = 0.01

#: How the calibration scores are made (stored in the model's calibration block).
METHOD = "out-of-bank"
METHOD_TEXT = ("each readable training image scored against the final bank without its own rows "
               "(k-NN mean, image max, Eq. 7 re-weighting when on, upsampled map maximum)")

#: The rule of models calibrated before the false-reject rate (format 2 hold-out).
RULE = (
    "max(mean + 3 std, max) of held-out good images' scores "
    "(image: image scores; pixel: per-image anomaly-map maxima)"
)

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def threshold_rule(values: np.ndarray) -> float:
    """The old rule: mean + 3 std, but never below the largest good value seen."""
    v = _finite(values)
    if v.size == 0:
        return float("nan")
    return float(max(v.mean() + 3.0 * v.std(ddof=1 if v.size > 1 else 0), v.max()))


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return v[np.isfinite(v)]


def check_rate(rate: float, what: str = "false-reject rate") -> float:
    """``rate`` as a float in (0, 1); ValueError with one line otherwise."""
    r = float(rate)
    if not 0.0 < r < 1.0:  # NaN fails too
        raise ValueError(f"{what} must lie strictly between 0 and 1, got {rate}")
    return r


def enough_for_quantile(n: int, rate: float) -> bool:
    """True when ``n`` scores give an order statistic exceeded with probability ``rate``:
    the Weibull position (n + 1)(1 - rate) of the 1 - rate quantile lies within the sample,
    i.e. n >= 1 / rate - 1 (99 scores for 1 %)."""
    return n + 1e-9 >= 1.0 / rate - 1.0


def rate_estimate(scores: np.ndarray | list[float], rate: float) -> tuple[float, bool]:
    """(threshold, extrapolated): the value good parts exceed with probability ``rate``.

    With enough scores (``enough_for_quantile``), the Weibull-plotting-position quantile
    at 1 - rate: for a continuous score, a fresh good part exceeds the k-th order
    statistic of n with probability 1 - k / (n + 1) exactly, so it is the unbiased
    choice. With fewer scores that position lies beyond the largest one: the estimate
    is then extrapolated from a normal fit of the logs (scores are positive and skewed),
    mean + z(1 - rate) std, and never below the largest score seen.
    NaN when there is no finite score.
    """
    r = check_rate(rate)
    v = _finite(scores)
    n = int(v.size)
    if n == 0:
        return float("nan"), False
    if enough_for_quantile(n, r):
        return float(np.quantile(v, 1.0 - r, method="weibull")), False
    pos = v[v > 0]
    if pos.size < 2:
        return float(v.max()), True
    logs = np.log(pos)
    z = NormalDist().inv_cdf(1.0 - r)
    fit = math.exp(float(logs.mean()) + z * float(logs.std(ddof=1)))
    return float(max(fit, v.max())), True


def threshold_for_rate(scores: np.ndarray | list[float], rate: float) -> float:
    """The threshold that sends ``rate`` of good parts to NG, from good parts' scores
    (see ``rate_estimate``); NaN without scores; ValueError for a rate outside (0, 1)."""
    return rate_estimate(scores, rate)[0]


def exceedance(scores: np.ndarray | list[float], threshold: float) -> float:
    """The share of ``scores`` strictly above ``threshold`` (NG means score > threshold)."""
    v = _finite(scores)
    return float((v > threshold).mean()) if v.size else float("nan")


def review_for_rate(scores: np.ndarray | list[float], threshold: float, review_rate: float) -> float:
    """The review band's start that sends ``review_rate`` of good parts to REVIEW.

    The good parts above the threshold are already NG (``exceedance``), so the start is
    the Weibull quantile at 1 - (exceedance + review_rate), clamped to the threshold (an
    empty band, never a start above it). NaN without scores.
    """
    r = check_rate(review_rate, "review rate")
    v = _finite(scores)
    if v.size == 0 or not math.isfinite(threshold):
        return float("nan")
    q = 1.0 - (exceedance(v, threshold) + r)
    start = float(np.quantile(v, min(max(q, 0.0), 1.0), method="weibull"))
    return min(start, float(threshold))


def _percent(rate: float) -> str:
    return f"{rate * 100:.3g} %"


def rate_rule(rate: float, n: int, extrapolated: bool, what: str = "out-of-bank scores") -> str:
    """How a threshold was set, e.g. "1 % false rejects estimated from 100 out-of-bank scores"."""
    text = f"{_percent(rate)} false rejects estimated from {n} {what}"
    return text + (" (extrapolated from a log-normal fit)" if extrapolated else "")


def describe(values: np.ndarray) -> dict[str, Any]:
    """Quantiles, mean, std and max of a score sample, as plain floats."""
    v = _finite(values)
    if v.size == 0:
        return {"count": 0}
    return {
        "count": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "max": float(v.max()),
        "min": float(v.min()),
        "quantiles": {f"{q:g}": float(np.quantile(v, q)) for q in QUANTILES},
    }


def calibrate(image_scores: np.ndarray, map_maxima: np.ndarray, false_reject: float = DEFAULT_FALSE_REJECT,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``calibration`` and ``threshold`` metadata blocks from the out-of-bank results.

    ``extra`` goes into the calibration block (how the scores were made: k, re-weighting).
    """
    rate = check_rate(false_reject)
    scores, maxima = _finite(image_scores), _finite(map_maxima)
    image_t, image_x = rate_estimate(scores, rate)
    pixel_t, pixel_x = rate_estimate(maxima, rate)
    rule = (f"image: {rate_rule(rate, scores.size, image_x)}; "
            f"pixel: {rate_rule(rate, maxima.size, pixel_x, 'out-of-bank map maxima')}")
    return {
        "calibration": {
            "method": METHOD,
            "method_text": METHOD_TEXT,
            "images": int(scores.size),
            **(extra or {}),
            "image_scores": describe(scores),
            "map_maxima": describe(maxima),
            "scores": [float(s) for s in np.asarray(image_scores, dtype=np.float64)],
            "map_maxima_values": [float(s) for s in np.asarray(map_maxima, dtype=np.float64)],
        },
        "threshold": {
            "image": image_t,
            "pixel": pixel_t,
            "review_from": float("nan"),
            "rule": rule,
            "source": "calibration",
            "false_reject_rate": rate,
            "count": int(scores.size),
            "image_estimate": "log-normal extrapolation" if image_x else "order statistic",
            "pixel_estimate": "log-normal extrapolation" if pixel_x else "order statistic",
            "history": [],
        },
    }


def uncalibrated(reason: str = "trained without calibration") -> dict[str, Any]:
    """Metadata blocks when calibration was turned off or impossible (``reason`` says which)."""
    return {
        "calibration": {"method": "none", "images": 0, "reason": reason},
        "threshold": {
            "image": float("nan"),
            "pixel": float("nan"),
            "rule": f"none: {reason}; set a threshold by hand",
            "source": "none",
            "history": [],
        },
    }
