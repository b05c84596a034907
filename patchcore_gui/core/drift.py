"""Score drift: does a batch still look like the good images the model was calibrated on?

A model's thresholds are only as good as the match between the parts it sees and the
good images it was trained and calibrated on. When the lighting, the focus, the camera
distance or the product changes, every image scores higher (or lower) than it did at
calibration, and the false-reject rate set at training no longer holds. This module
compares a run's image scores with the model's calibration scores (good images, each
scored against a bank that did not contain it) and says whether the batch has moved.

The test is built to stay quiet on a normal batch that holds a few defective parts. A
two-sample Kolmogorov-Smirnov test on all scores would fire on any batch with defects.
Two statistics, either of which raises the alarm:

* Location: the MEDIANS. A share ``d`` of defective parts moves the run's median only
  to the good scores' ``0.5 / (1 - d)`` quantile (5 % defects: the 52.6th percentile,
  0.07 spread; 30 %: under half a spread). With ``s`` the training spread
  (interquartile range / 1.349, the standard deviation for normal scores, robust to
  the few high calibration scores)::

      shift     = (median(run) - median(calibration)) / s
      tolerance = EFFECT_FLOOR + Z * 1.2533 * sqrt(1 / n_run + 1 / n_calibration)

  ``1.2533 s / sqrt(n)`` is the standard error of a sample median, so the second term
  allows for the sampling noise of both medians (``Z`` = 3: about 1 false alarm in 700
  checks per side). ``EFFECT_FLOOR`` (1 spread) is the smallest shift that matters: a
  median one spread higher moves a threshold at the training scores' 99th percentile
  from 1 % false rejects to about 10 % (normal scores).
* Upper tail: the share of images scoring above EVERY calibration score. For a batch
  like the calibration images it is ``p = 1 / (n_calibration + 1)``; defective parts
  add at most their own share, so the alarm allows ``DEFECT_ALLOWANCE`` (10 %) on top,
  plus ``Z`` standard errors (binomial over the run, and ``p`` for the calibration
  maximum's own chance)::

      tail tolerance = p + DEFECT_ALLOWANCE + Z * sqrt(p (1 - p) / n_run + p^2)

  This catches a batch whose scores spread upwards more than they move in the middle
  (half the light: median 1.2x, a quarter of the parts above every training score,
  i.e. far more false rejects than the threshold was set for).

Calibration scores that are every training image's out-of-bank score are exchangeable
with new good images' scores, so a normal batch sits near shift 0 and share ``p``
(measured on held-out tiles of a real photograph: shift -0.16 spread, 2 % above).
No verdict before ``MIN_RUN_IMAGES`` scored images,
nor with fewer than ``MIN_CALIBRATION_SCORES`` calibration scores: models made before
every training image was calibrated carry only a held-out slice (often 6 scores), too
few to say where the training median lies; the check then says so instead of guessing.

In a labelled set (an MVTec-style test folder), images labelled defective are left
out: their scores are expected to be high, and such a folder is often mostly defects.

Pure numpy; no Qt, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: No verdict before this many scored images (a median of fewer is too noisy to act on).
MIN_RUN_IMAGES = 20
#: Fewer calibration scores than this: "not enough calibration scores for a drift check".
MIN_CALIBRATION_SCORES = 20
#: Smallest median shift, in training spreads, that counts as drift (see the module doc).
EFFECT_FLOOR = 1.0
#: Standard errors allowed on top of the floor (median) and the defect allowance (tail).
Z = 3.0
#: Share of defective parts a normal batch may add above every training score.
DEFECT_ALLOWANCE = 0.10
#: Standard error of a sample median in standard deviations (normal scores): sqrt(pi / 2).
MEDIAN_SE = math.sqrt(math.pi / 2.0)
#: What the user should look at when a batch has drifted (the CLI's line and the banner).
ADVICE = "the batch does not look like the training images: check lighting, focus, camera, product"

#: Statuses: a verdict (normal, shifted) or why there is none.
NORMAL, SHIFTED = "normal", "shifted"
TOO_FEW_IMAGES, FEW_CALIBRATION, NO_CALIBRATION = "too_few_images", "few_calibration", "no_calibration"
STATUSES = (NORMAL, SHIFTED, TOO_FEW_IMAGES, FEW_CALIBRATION, NO_CALIBRATION)


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one drift check, with the figures behind it (NaN where not computed)."""

    status: str
    run_count: int
    calibration_count: int
    run_median: float = math.nan
    calibration_median: float = math.nan
    spread: float = math.nan
    #: (run median - calibration median) / spread.
    shift: float = math.nan
    tolerance: float = math.nan
    #: Share of the checked images scoring above the highest calibration score.
    above_max: float = math.nan
    #: That share for a batch like the calibration images: 1 / (n_calibration + 1).
    expected_above_max: float = math.nan
    #: The share above which the upper tail alone raises the alarm.
    tail_tolerance: float = math.nan
    #: Images labelled defective that were left out of the check.
    excluded_defects: int = 0

    @property
    def shifted(self) -> bool:
        """True when the batch has drifted from the calibration scores."""
        return self.status == SHIFTED

    @property
    def checked(self) -> bool:
        """True when there was a verdict (normal or shifted)."""
        return self.status in (NORMAL, SHIFTED)

    @property
    def ratio(self) -> float:
        """Run median / calibration median (NaN when not computed or the latter is not positive)."""
        if not (math.isfinite(self.run_median) and math.isfinite(self.calibration_median)):
            return math.nan
        return self.run_median / self.calibration_median if self.calibration_median > 0 else math.nan

    @property
    def tail_shifted(self) -> bool:
        """True when too many images score above every calibration score."""
        return bool(self.above_max > self.tail_tolerance)

    @property
    def direction(self) -> str:
        """"higher" or "lower" (the run's scores against the training scores), "" without a check."""
        if not math.isfinite(self.shift):
            return ""
        return "higher" if self.shift >= 0 or self.tail_shifted else "lower"

    def figure(self) -> str:
        """The figure behind the verdict in one line (what the banner, report and CLI show)."""
        if self.status == NO_CALIBRATION:
            return "no calibration scores in the model: no drift check"
        if self.status == FEW_CALIBRATION:
            return (f"not enough calibration scores for a drift check ({self.calibration_count} in the model, "
                    f"{MIN_CALIBRATION_SCORES} needed; retraining stores one per training image)")
        if self.status == TOO_FEW_IMAGES:
            return f"drift check after {MIN_RUN_IMAGES} scored images ({self.run_count} so far)"
        ratio = f"{self.ratio:.2g}x" if math.isfinite(self.ratio) else "–"
        side = "above" if self.shift >= 0 else "below"
        text = (f"median score {ratio} the training median ({abs(self.shift):.1f} training spreads {side} it, "
                f"tolerance {self.tolerance:.1f}); {_percent(self.above_max)} of {self.run_count} images score "
                f"above every training image (expected about {_percent(self.expected_above_max)}, "
                f"alarm above {_percent(self.tail_tolerance)})")
        if self.excluded_defects:
            text += f"; {self.excluded_defects} images labelled defective left out"
        return text

    def message(self) -> str:
        """The figure, with the advice when the batch has drifted."""
        return f"{self.figure()} ({ADVICE})" if self.shifted else self.figure()

    def to_json(self) -> dict[str, Any]:
        """A plain dict (NaN as None) for a run file's meta, with the message."""
        d: dict[str, Any] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                             for k, v in asdict(self).items()}
        d["message"] = self.message()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DriftResult:
        """Read back :meth:`to_json` (unknown keys ignored, missing figures NaN)."""
        def num(key: str) -> float:
            v = d.get(key)
            return math.nan if v is None else float(v)

        status = str(d.get("status", ""))
        if status not in STATUSES:
            raise ValueError(f"unknown drift status {status!r}")
        return cls(
            status=status, run_count=int(d.get("run_count", 0)), calibration_count=int(d.get("calibration_count", 0)),
            run_median=num("run_median"), calibration_median=num("calibration_median"), spread=num("spread"),
            shift=num("shift"), tolerance=num("tolerance"), above_max=num("above_max"),
            expected_above_max=num("expected_above_max"), tail_tolerance=num("tail_tolerance"),
            excluded_defects=int(d.get("excluded_defects", 0)),
        )


def _percent(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{100 * v:.0f} %" if v >= 0.01 or v == 0 else f"{100 * v:.1f} %"


def training_spread(calibration: np.ndarray) -> float:
    """Robust spread of the calibration scores: IQR / 1.349, floored at 1 % of their median.

    The floor keeps identical calibration scores (a synthetic or degenerate model) from
    making every difference infinitely significant.
    """
    c = np.asarray(calibration, dtype=np.float64)
    q25, q50, q75 = np.quantile(c, [0.25, 0.5, 0.75])
    return float(max((q75 - q25) / 1.349, 0.01 * abs(q50), 1e-12))


def tolerance(run_count: int, calibration_count: int) -> float:
    """How far (in training spreads) the run median may sit from the training median."""
    return EFFECT_FLOOR + Z * MEDIAN_SE * math.sqrt(1.0 / run_count + 1.0 / calibration_count)


def tail_tolerance(run_count: int, calibration_count: int) -> float:
    """Share of a run above every calibration score that raises the alarm (see the module doc)."""
    p = 1.0 / (calibration_count + 1)
    return p + DEFECT_ALLOWANCE + Z * math.sqrt(p * (1.0 - p) / run_count + p * p)


def check_drift(run_scores: np.ndarray, calibration_scores: np.ndarray,
                labels: np.ndarray | None = None) -> DriftResult:
    """Compare a run's image scores with the model's calibration scores (see the module doc).

    ``run_scores``: raw image scores (NaN for images not scored or failed: left out).
    ``labels``: ground truth per image (0 good, 1 defect, -1 unknown); images labelled
    defective are left out. ``calibration_scores``: ``model.calibration_scores``.
    """
    cal = np.asarray(calibration_scores, dtype=np.float64).reshape(-1)
    cal = cal[np.isfinite(cal)]
    s = np.asarray(run_scores, dtype=np.float64).reshape(-1)
    keep = np.isfinite(s)
    excluded = 0
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if lab.shape != s.shape:
            raise ValueError(f"{lab.size} labels for {s.size} scores")
        defect = keep & (lab > 0)
        excluded = int(np.count_nonzero(defect))
        keep &= ~defect
    s = s[keep]
    n, m = int(s.size), int(cal.size)
    if m == 0:
        return DriftResult(NO_CALIBRATION, n, 0, excluded_defects=excluded)
    if m < MIN_CALIBRATION_SCORES:
        return DriftResult(FEW_CALIBRATION, n, m, excluded_defects=excluded)
    if n < MIN_RUN_IMAGES:
        return DriftResult(TOO_FEW_IMAGES, n, m, excluded_defects=excluded)
    cal_median = float(np.median(cal))
    run_median = float(np.median(s))
    spread = training_spread(cal)
    shift = (run_median - cal_median) / spread
    tol = tolerance(n, m)
    above = float(np.count_nonzero(s > cal.max()) / n)
    tail_tol = tail_tolerance(n, m)
    return DriftResult(
        status=SHIFTED if abs(shift) > tol or above > tail_tol else NORMAL,
        run_count=n, calibration_count=m, run_median=run_median, calibration_median=cal_median,
        spread=spread, shift=float(shift), tolerance=float(tol), above_max=above,
        expected_above_max=1.0 / (m + 1), tail_tolerance=float(tail_tol), excluded_defects=excluded,
    )


def drift_of_run(meta: dict[str, Any], scores: np.ndarray, labels: np.ndarray | None = None) -> DriftResult:
    """The drift check of a run file's scores against the calibration its model carried.

    ``meta``: the run file's meta (``model_metadata`` holds the model's calibration).
    """
    cal = (meta.get("model_metadata") or {}).get("calibration", {}).get("scores", [])
    return check_drift(scores, np.asarray(cal, dtype=np.float64), labels)
