"""The false-reject-rate estimators of core/calibration.py: hand cases and sampling checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchcore_gui.core.calibration import (
    calibrate,
    enough_for_quantile,
    rate_estimate,
    review_for_rate,
    threshold_for_rate,
)


@pytest.mark.parametrize(
    ("n", "rate", "expected"),
    [
        # Weibull position (n + 1)(1 - rate): 100 * 0.99 = 99 -> the 99th (largest) of 1..99.
        (99, 0.01, 99.0),
        # 101 * 0.99 = 99.99 -> 99 + 0.99 * (100 - 99).
        (100, 0.01, 99.99),
        # 20 * 0.95 = 19 -> the largest of 1..19.
        (19, 0.05, 19.0),
        # 10 * 0.8 = 8 -> the 8th of 1..9.
        (9, 0.2, 8.0),
        # 201 * 0.9 = 180.9 -> 180 + 0.9.
        (200, 0.1, 180.9),
    ],
)
def test_order_statistic_by_hand(n: int, rate: float, expected: float) -> None:
    scores = np.arange(1, n + 1, dtype=np.float64)[::-1]  # order does not matter
    t, extrapolated = rate_estimate(scores, rate)
    assert not extrapolated
    assert t == pytest.approx(expected, rel=1e-12)


def test_enough_scores_boundary() -> None:
    assert enough_for_quantile(99, 0.01) and not enough_for_quantile(98, 0.01)
    assert enough_for_quantile(19, 0.05) and not enough_for_quantile(18, 0.05)


def test_log_normal_extrapolation_by_hand() -> None:
    # logs 0, 1, 2: mean 1, sample std 1; z(0.99) = 2.3263478740408408 -> exp(3.3263...).
    t, extrapolated = rate_estimate([1.0, math.e, math.e**2], 0.01)
    assert extrapolated
    assert t == pytest.approx(27.836493454766828, rel=1e-12)
    # The fit falls below the largest score here (logs 0, 0, 0, 0, ln 10: mean 0.46,
    # std 1.03, z(0.9) 1.28 -> 5.93): the threshold is never below what was seen.
    assert threshold_for_rate([1.0, 1.0, 1.0, 1.0, 10.0], 0.1) == 10.0
    # NaN and infinite scores are left out; one score is its own threshold; none is NaN.
    assert threshold_for_rate([np.nan, 4.0, np.inf], 0.01) == 4.0
    assert math.isnan(threshold_for_rate([], 0.01))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_rate_outside_zero_one_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        threshold_for_rate([1.0, 2.0], bad)
    with pytest.raises(ValueError, match="review rate must lie strictly between 0 and 1"):
        review_for_rate([1.0, 2.0], 2.0, bad)


def test_review_start_by_hand() -> None:
    s = np.arange(1, 101, dtype=np.float64)
    # 1 of 100 above 99.99 -> quantile at 1 - (0.01 + 0.05) = 0.94: 101 * 0.94 = 94.94.
    assert review_for_rate(s, 99.99, 0.05) == pytest.approx(94.94, rel=1e-12)
    # Nothing above 100 -> quantile at 0.95: 101 * 0.95 = 95.95.
    assert review_for_rate(s, 100.0, 0.05) == pytest.approx(95.95, rel=1e-12)
    t10 = np.arange(1, 11, dtype=np.float64)
    # 1 of 10 above 9.5 -> quantile 0.89: 11 * 0.89 = 9.79, above the threshold: clamped to 9.5.
    assert review_for_rate(t10, 9.5, 0.01) == 9.5
    # 7 of 10 above 3 and 50 % more asked: nothing left below, the smallest score.
    assert review_for_rate(t10, 3.0, 0.5) == 1.0
    assert math.isnan(review_for_rate(t10, math.nan, 0.05))


def test_order_statistic_exceedance_is_the_rate_on_average() -> None:
    # Uniform scores: a fresh good part exceeds t with probability 1 - t, so the mean of
    # 1 - t over many samples is the estimator's expected false-reject rate.
    rng = np.random.default_rng(0)
    for n, rate in ((99, 0.01), (150, 0.01), (40, 0.05)):
        t = np.array([threshold_for_rate(rng.uniform(size=n), rate) for _ in range(4000)])
        assert np.mean(1.0 - t) == pytest.approx(rate, abs=0.1 * rate), (n, rate)


def test_large_sample_exceedance_on_fresh_draws_is_close_to_the_rate() -> None:
    rng = np.random.default_rng(1)
    scores = rng.lognormal(3.0, 0.4, size=3000)
    fresh = rng.lognormal(3.0, 0.4, size=400_000)
    for rate in (0.01, 0.05):
        t = threshold_for_rate(scores, rate)
        assert np.mean(fresh > t) == pytest.approx(rate, rel=0.3)
        r = review_for_rate(scores, t, 0.05)
        assert np.mean((fresh > r) & (fresh <= t)) == pytest.approx(0.05, rel=0.2)


def test_extrapolation_on_log_normal_scores_is_near_the_rate() -> None:
    # 30 scores are too few for 1 %: the log-normal fit must still land near it on average
    # (a little above: the fitted spread is itself uncertain).
    rng = np.random.default_rng(2)
    from statistics import NormalDist

    exceed = []
    for _ in range(500):
        s = rng.lognormal(3.0, 0.4, size=30)
        t, extrapolated = rate_estimate(s, 0.01)
        assert extrapolated
        exceed.append(1.0 - NormalDist(3.0, 0.4).cdf(math.log(t)))
    assert 0.008 < float(np.mean(exceed)) < 0.025


def test_calibrate_blocks_state_rate_count_and_estimate() -> None:
    blocks = calibrate(np.arange(1.0, 101.0), np.arange(1.0, 11.0), 0.01, {"k": 1})
    th, cal = blocks["threshold"], blocks["calibration"]
    assert th["image"] == pytest.approx(99.99) and th["image_estimate"] == "order statistic"
    assert th["pixel"] > 10.0 and th["pixel_estimate"] == "log-normal extrapolation"
    assert th["rule"] == ("image: 1 % false rejects estimated from 100 out-of-bank scores; "
                          "pixel: 1 % false rejects estimated from 10 out-of-bank map maxima "
                          "(extrapolated from a log-normal fit)")
    assert th["false_reject_rate"] == 0.01 and th["count"] == 100 and math.isnan(th["review_from"])
    assert cal["images"] == 100 and cal["k"] == 1 and len(cal["scores"]) == 100
    assert cal["map_maxima_values"] == [float(v) for v in range(1, 11)]
