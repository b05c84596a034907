"""The drift check's rule on numbers (core/drift.py); real photographs are in test_drift_photos.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchcore_gui.core import drift
from patchcore_gui.core.drift import DriftResult, check_drift


def _good(n: int, seed: int) -> np.ndarray:
    """Right-skewed positive scores like PatchCore's (a max of squared distances)."""
    return 500.0 + 60.0 * np.random.default_rng(seed).gumbel(size=n)


def test_the_stated_constants() -> None:
    # The README and the module doc state these; a changed constant must change them too.
    assert drift.MIN_RUN_IMAGES == 20
    assert drift.MIN_CALIBRATION_SCORES == 20
    assert drift.EFFECT_FLOOR == 1.0 and drift.Z == 3.0 and drift.DEFECT_ALLOWANCE == 0.10
    p = 1 / 61
    assert drift.tail_tolerance(60, 60) == pytest.approx(p + 0.10 + 3.0 * math.sqrt(p * (1 - p) / 60 + p * p), rel=1e-9)
    assert drift.tolerance(20, 20) == pytest.approx(1.0 + 3.0 * 1.2533141 * math.sqrt(0.1), rel=1e-6)
    assert drift.tolerance(10**6, 100) == pytest.approx(1.0 + 3.0 * 1.2533141 * math.sqrt(1e-6 + 0.01), rel=1e-6)


def test_spread_is_the_interquartile_range_over_1_349() -> None:
    cal = np.arange(1.0, 101.0)  # quartiles 25.75 and 75.25
    assert drift.training_spread(cal) == pytest.approx(49.5 / 1.349)
    # Identical scores: floored at 1 % of the median instead of dividing by zero.
    assert drift.training_spread(np.full(30, 200.0)) == pytest.approx(2.0)


def test_a_batch_like_the_calibration_is_normal_even_with_five_percent_defects() -> None:
    cal = _good(100, 0)
    run = _good(400, 1)
    assert check_drift(run, cal).status == drift.NORMAL
    run[::20] = 5000.0  # 5 % defective parts, far above every good score
    res = check_drift(run, cal)
    assert res.status == drift.NORMAL and not res.shifted
    assert res.above_max >= 0.05  # the defects are there, in the tail the test ignores


@pytest.mark.parametrize(("factor", "direction"), [(1.6, "higher"), (0.6, "lower")])
def test_a_scaled_batch_is_shifted_with_its_direction(factor: float, direction: str) -> None:
    cal = _good(100, 0)
    res = check_drift(_good(200, 2) * factor, cal)
    assert res.shifted and res.direction == direction
    assert abs(res.shift) > res.tolerance
    assert res.ratio == pytest.approx(res.run_median / res.calibration_median)


def test_the_median_verdict_sits_at_its_tolerance() -> None:
    # One huge calibration score keeps the upper-tail test out of it (nothing scores above it).
    cal = np.append(_good(49, 0), 1e9)
    base = _good(60, 3)
    spread, tol = drift.training_spread(cal), drift.tolerance(60, 50)
    # Move the run so its median sits just inside, then just outside the tolerance.
    centred = base - np.median(base) + np.median(cal)
    assert check_drift(centred + 0.98 * tol * spread, cal).status == drift.NORMAL
    assert check_drift(centred + 1.02 * tol * spread, cal).status == drift.SHIFTED
    assert check_drift(centred - 1.02 * tol * spread, cal).direction == "lower"


def test_a_batch_spread_upwards_is_caught_by_the_tail() -> None:
    cal = _good(60, 0)
    run = _good(100, 4)
    run = run - np.median(run) + np.median(cal)
    top = np.argsort(run)[-30:]  # the upper 30 % moves above every training score, the median stays
    run[top] = cal.max() + 1.0 + np.arange(30)
    res = check_drift(run, cal)
    assert abs(res.shift) < res.tolerance  # the median test alone would miss it
    assert res.tail_shifted and res.shifted and res.direction == "higher"
    assert "30 % of 100 images score above every training image (expected about 2 %, alarm above " in res.message()
    # 8 % defective parts, all above every training score: within the allowance.
    run2 = _good(100, 4)
    run2[:8] = 1e6
    assert check_drift(run2, cal).status == drift.NORMAL


def test_no_verdict_without_enough_images_or_calibration() -> None:
    cal = _good(40, 0)
    few = check_drift(_good(19, 1) * 3, cal)
    assert few.status == drift.TOO_FEW_IMAGES and not few.shifted
    assert "after 20 scored images (19 so far)" in few.message()
    assert check_drift(_good(20, 1) * 3, cal).shifted  # 20 is enough
    old = check_drift(_good(100, 1) * 3, cal[:6])  # an old model's held-out slice
    assert old.status == drift.FEW_CALIBRATION and not old.shifted
    assert "not enough calibration scores for a drift check (6 in the model" in old.message()
    none = check_drift(_good(100, 1), np.empty(0))
    assert none.status == drift.NO_CALIBRATION and "no drift check" in none.message()


def test_errors_are_left_out_and_labelled_defects_too() -> None:
    cal = _good(60, 0)
    run = np.concatenate([_good(30, 1), np.full(5, np.nan), np.full(40, 9000.0)])
    labels = np.concatenate([np.zeros(35, np.int8), np.ones(40, np.int8)])
    # Unlabelled, the 40 defects are most of the batch: its median moves.
    assert check_drift(run, cal).shifted
    res = check_drift(run, cal, labels)
    assert res.status == drift.NORMAL and res.run_count == 30 and res.excluded_defects == 40
    assert "40 images labelled defective left out" in res.message()
    with pytest.raises(ValueError):
        check_drift(run, cal, labels[:-1])


def test_messages_give_the_figure_and_the_advice_only_when_shifted() -> None:
    cal = _good(60, 0)
    shifted = check_drift(_good(100, 1) * 2.0, cal)
    text = shifted.message()
    assert text.startswith("median score 2") and "x the training median" in text
    assert "score above every training image (expected about 2 %, alarm above 18 %)" in text  # 1 / 61, 100 images
    assert text.endswith("(the batch does not look like the training images: check lighting, focus, camera, product)")
    assert "check lighting" not in check_drift(_good(100, 1), cal).message()


def test_json_round_trip_keeps_every_figure() -> None:
    res = check_drift(_good(100, 1) * 2.0, _good(60, 0))
    d = res.to_json()
    assert d["status"] == "shifted" and d["message"] == res.message()
    assert DriftResult.from_json(d) == res
    few = DriftResult.from_json(check_drift(_good(5, 1), _good(60, 0)).to_json())
    assert few.status == drift.TOO_FEW_IMAGES and math.isnan(few.shift)
    with pytest.raises(ValueError):
        DriftResult.from_json({"status": "bogus"})


def test_drift_of_run_reads_the_models_calibration_from_the_run_meta() -> None:
    cal = _good(60, 0)
    meta = {"model_metadata": {"calibration": {"scores": cal.tolist()}}}
    assert drift.drift_of_run(meta, _good(100, 1) * 2.0).shifted
    assert drift.drift_of_run({}, _good(100, 1)).status == drift.NO_CALIBRATION
