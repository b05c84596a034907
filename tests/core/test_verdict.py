"""core/verdict.py: the one NG rule (score > threshold) and its NaN cases."""

from __future__ import annotations

import math

import numpy as np

from patchcore_gui.core import verdict as v

NAN = math.nan


def test_words() -> None:
    assert (v.OK, v.NG) == ("OK", "NG")


def test_is_ng_is_strictly_greater() -> None:
    assert v.is_ng(2.0001, 2.0)
    assert not v.is_ng(2.0, 2.0)  # equal is OK: the threshold is the largest accepted score
    assert not v.is_ng(1.9, 2.0)
    assert v.is_ng(-1.0, -2.0)


def test_is_ng_nan_cases() -> None:
    assert not v.is_ng(NAN, 2.0)  # not scored: never NG
    assert not v.is_ng(5.0, NAN)  # no threshold: nothing NG
    assert v.is_ng(math.inf, 2.0)
    assert not v.is_ng(5.0, math.inf)


def test_ng_mask_matches_is_ng() -> None:
    scores = np.array([1.0, 2.0, 2.5, NAN, -1.0, math.inf], dtype=np.float32)
    np.testing.assert_array_equal(v.ng_mask(scores, 2.0), [False, False, True, False, False, True])
    assert not v.ng_mask(scores, NAN).any()
    assert v.ng_mask(scores, 2.0).dtype == np.bool_
    for t in (-2.0, 0.0, 1.0, 2.0, 2.4, 3.0):
        assert list(v.ng_mask(scores, t)) == [v.is_ng(float(s), t) for s in scores]


def test_verdict_words() -> None:
    assert v.verdict(2.5, 2.0) == "NG"
    assert v.verdict(2.0, 2.0) == "OK"
    assert v.verdict(NAN, 2.0) == ""
    assert v.verdict(math.inf, 2.0) == ""
    assert v.verdict(1.0, NAN) == ""


def test_count_ng_equals_the_mask_count() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.gamma(3.0, 1.0, 500), 1)  # many ties, so equality matters
    scores[:7] = np.nan
    s = np.sort(scores)
    for t in (-1.0, 0.0, 1.0, 2.0, 2.5, 3.0, 4.1, 50.0, float(s[100])):
        assert v.count_ng(s, t) == int(v.ng_mask(scores, t).sum()), t
    assert v.count_ng(s, NAN) == 0
    assert v.count_ng(np.array([]), 1.0) == 0
    assert v.count_ng(np.array([1.0, 2.0, 2.0, 3.0]), 2.0) == 1
