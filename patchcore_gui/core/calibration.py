"""Default thresholds from held-out good images.

At training a slice of the good images is held out, scored against a bank built from
the rest, and its score distribution stored. The default thresholds follow one stated
rule (``RULE``) so a quality engineer can see how they were set and move them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How the default thresholds are derived from the held-out good images.
RULE = (
    "max(mean + 3 std, max) of held-out good images' scores "
    "(image: image scores; pixel: per-image anomaly-map maxima)"
)

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def threshold_rule(values: np.ndarray) -> float:
    """mean + 3 std, but never below the largest good value seen."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(max(v.mean() + 3.0 * v.std(ddof=1 if v.size > 1 else 0), v.max()))


def describe(values: np.ndarray) -> dict[str, Any]:
    """Quantiles, mean, std and max of a score sample, as plain floats."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
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


def calibrate(image_scores: np.ndarray, map_maxima: np.ndarray, holdout_count: int, holdout_fraction: float) -> dict[str, Any]:
    """The ``calibration`` and ``threshold`` metadata blocks from held-out results."""
    image_t = threshold_rule(image_scores)
    pixel_t = threshold_rule(map_maxima)
    return {
        "calibration": {
            "holdout_images": int(holdout_count),
            "holdout_fraction": float(holdout_fraction),
            "image_scores": describe(image_scores),
            "map_maxima": describe(map_maxima),
            "scores": [float(s) for s in np.asarray(image_scores, dtype=np.float64)],
        },
        "threshold": {
            "image": image_t,
            "pixel": pixel_t,
            "rule": RULE,
            "source": "calibration",
            "history": [],
        },
    }


def uncalibrated() -> dict[str, Any]:
    """Metadata blocks when calibration was turned off (``--holdout 0``) or impossible."""
    return {
        "calibration": {"holdout_images": 0, "holdout_fraction": 0.0},
        "threshold": {
            "image": float("nan"),
            "pixel": float("nan"),
            "rule": "none: trained without hold-out; set a threshold by hand",
            "source": "none",
            "history": [],
        },
    }
