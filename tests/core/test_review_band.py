"""core/verdict.py's review band: OK <= review_from < REVIEW <= threshold < NG, and its NaN cases."""

from __future__ import annotations

import math

import numpy as np

from patchcore_gui.core import verdict as v

NAN = math.nan


def test_boundaries_of_the_band() -> None:
    assert v.REVIEW == "REVIEW"
    assert v.verdict(2.0, 5.0, 2.0) == "OK"  # equal to the review start: OK
    assert v.verdict(2.0001, 5.0, 2.0) == "REVIEW"
    assert v.verdict(5.0, 5.0, 2.0) == "REVIEW"  # equal to the threshold: REVIEW, not NG
    assert v.verdict(5.0001, 5.0, 2.0) == "NG"
    assert v.verdict(1.0, 5.0, 2.0) == "OK"


def test_no_band_is_the_two_verdict_rule() -> None:
    for s in (1.0, 2.0, 4.9, 5.0, 5.1):
        assert v.verdict(s, 5.0, NAN) == v.verdict(s, 5.0) == ("NG" if s > 5.0 else "OK")
        assert not v.is_review(s, 5.0)


def test_nan_score_and_nan_threshold_have_no_verdict() -> None:
    assert v.verdict(NAN, 5.0, 2.0) == ""
    assert v.verdict(3.0, NAN, 2.0) == ""
    assert not v.is_review(NAN, 5.0, 2.0)
    assert not v.is_review(3.0, NAN, 2.0)
    assert v.verdict_code(NAN, 5.0, 2.0) == v.CODE_NONE


def test_a_band_above_the_threshold_is_empty_not_reinterpreted() -> None:
    # check_thresholds refuses it where it is set; here nothing is REVIEW and NG stays score > threshold.
    for s in (1.0, 5.0, 6.0, 7.0, 8.0):
        assert v.verdict(s, 5.0, 7.0) == ("NG" if s > 5.0 else "OK")


def test_codes_match_the_words() -> None:
    scores = np.array([0.5, 2.0, 2.5, 5.0, 5.5, NAN, np.inf], dtype=np.float32)
    words = {v.CODE_OK: "OK", v.CODE_REVIEW: "REVIEW", v.CODE_NG: "NG", v.CODE_NONE: ""}
    for thr, rf in ((5.0, 2.0), (5.0, NAN), (2.5, 0.5), (5.0, 5.0)):
        codes = v.verdict_codes(scores, thr, rf)
        assert codes.dtype == np.int8
        assert [int(c) for c in codes] == [v.verdict_code(float(s), thr, rf) for s in scores]
        finite = np.isfinite(scores)
        assert [words[int(c)] for c in codes[finite]] == [v.verdict(float(s), thr, rf) for s in scores[finite]]
    np.testing.assert_array_equal(v.verdict_codes(scores, 5.0, 2.0), [0, 0, 4, 4, 1, 2, 1])
    # A NaN threshold: scored images are OK, as ng_mask has it; NaN scores have none.
    np.testing.assert_array_equal(v.verdict_codes(scores, NAN, 2.0), [0, 0, 0, 0, 0, 2, 0])


def test_review_mask_and_count_review_agree() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.gamma(3.0, 1.0, 400), 1)  # ties on both edges
    scores[:5] = np.nan
    s = np.sort(scores)
    for thr, rf in ((3.0, 2.0), (4.1, 1.0), (2.0, 2.0), (50.0, 0.0), (3.0, NAN), (NAN, 1.0), (2.0, 3.0),
                    (float(s[200]), float(s[100]))):
        want = int(v.review_mask(scores, thr, rf).sum())
        assert v.count_review(s, thr, rf) == want, (thr, rf)
        assert want == sum(v.verdict(float(x), thr, rf) == "REVIEW" for x in scores)
    assert v.count_review(np.array([1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 6.0]), 5.0, 2.0) == 3
    assert v.count_review(np.array([]), 5.0, 2.0) == 0
    # The band and NG never overlap; together with OK they cover every scored image.
    ok = ~v.ng_mask(scores, 3.0) & ~v.review_mask(scores, 3.0, 2.0) & ~np.isnan(scores)
    assert int(ok.sum() + v.review_mask(scores, 3.0, 2.0).sum() + v.ng_mask(scores, 3.0).sum()) == 395


def test_review_counts_leave_the_confusion_at_the_threshold() -> None:
    from patchcore_gui.core import metrics

    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 3.5, NAN, 3.0]
    labels = [0, 0, 0, 1, 1, 1, 0, 0, -1]  # NaN score and unknown label are ignored
    assert metrics.review_counts(scores, labels, 4.0, 2.0) == {"good": 2, "defect": 1}  # 3.0, 3.5 | 4.0
    assert metrics.review_counts(scores, labels, 4.0, NAN) == {"good": 0, "defect": 0}
    assert metrics.confusion(scores, labels, 4.0) == {"tp": 2, "fp": 0, "tn": 4, "fn": 1}
    assert metrics.auroc(scores, labels) == 1.0


def test_result_table_counts_and_filters_with_a_band() -> None:
    from pathlib import Path

    from patchcore_gui.core.datasets import ImageSet
    from patchcore_gui.core.result_table import ERROR, NG, OK, PENDING, REVIEW, ResultTable

    n = 7
    iset = ImageSet(root=Path("/x"), paths=[Path(f"/x/{i}.png") for i in range(n)],
                    labels=np.array([0, 0, 0, 1, 1, 0, 1], dtype=np.int8), mask_paths=[None] * n,
                    defect_types=[""] * n, layout="mvtec")
    st = ResultTable(iset)
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan], dtype=np.float32)
    st.add(np.arange(6), scores, np.zeros((6, 2, 2), np.float16), ["", "", "", "", "", "broken"])  # 6: pending
    np.testing.assert_array_equal(st.verdicts(4.0, review_from=2.0), [OK, OK, REVIEW, REVIEW, NG, ERROR, PENDING])
    assert st.counts(4.0, 2.0) == {"ok": 2, "review": 2, "ng": 1, "error": 1, "total": 6}
    assert st.counts(4.0) == {"ok": 4, "review": 0, "ng": 1, "error": 1, "total": 6}
    rows = np.arange(n)
    want = {"ng": [4], "review": [2, 3], "ok": [0, 1], "errors": [5], "fp": [], "fn": []}
    for kind, idx in want.items():
        assert np.flatnonzero(st.filter_mask(rows, kind, 4.0, 2.0)).tolist() == idx, kind
    # Without the band the defect at 4.0 is OK, so a false negative.
    assert np.flatnonzero(st.filter_mask(rows, "fn", 4.0)).tolist() == [3]
    assert np.flatnonzero(st.filter_mask(rows, "fp", 2.5, 1.0)).tolist() == [2]
