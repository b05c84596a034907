"""Tests for patchcore_gui.core.metrics: hand-computed cases plus reference cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchcore_gui.core import metrics
from patchcore_gui.core.metrics import (
    auroc,
    confusion,
    f1_optimal_threshold,
    image_auroc,
    pixel_auroc,
    precision_recall_f1,
    pro_score,
    roc_curve,
    threshold_for_false_reject_rate,
)

# A small case used throughout: negatives 0.1, 0.4; positives 0.35, 0.8.
SCORES = [0.1, 0.4, 0.35, 0.8]
LABELS = [0, 0, 1, 1]


# --------------------------------------------------------------------------- references


def _pairwise_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Brute-force Mann-Whitney: compare every positive with every negative."""
    pos = scores[labels == 1][:, None]
    neg = scores[labels == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _reference_pro(maps: list[np.ndarray], masks: list[np.ndarray], fpr_limit: float) -> float:
    """Literal MVTec AD method: sort all pixels, cumulative sums, last index per score,
    prepend (0, 0), trapezoid with linear interpolation at the limit."""
    from scipy import ndimage

    fp_w, pro_w, values = [], [], []
    labeled_maps = []
    n_regions = 0
    for mask in masks:
        labeled, count = ndimage.label(mask > 0.5, structure=np.ones((3, 3)))
        labeled_maps.append(labeled)
        n_regions += count
    n_ok = sum(int(np.sum(m <= 0.5)) for m in masks)
    for amap, labeled in zip(maps, labeled_maps, strict=True):
        fp = np.where(labeled == 0, 1.0 / n_ok, 0.0)
        pro = np.zeros(labeled.shape)
        for region in range(1, labeled.max() + 1):
            inside = labeled == region
            pro[inside] = 1.0 / inside.sum() / n_regions
        fp_w.append(fp.ravel())
        pro_w.append(pro.ravel())
        values.append(amap.ravel().astype(np.float32))
    s = np.concatenate(values)
    order = np.argsort(s, kind="stable")[::-1]
    s = s[order]
    fprs = np.cumsum(np.concatenate(fp_w)[order])
    pros = np.cumsum(np.concatenate(pro_w)[order])
    keep = np.append(s[1:] != s[:-1], True)
    x = np.concatenate(([0.0], fprs[keep]))
    y = np.concatenate(([0.0], pros[keep]))
    # Trapezoid up to fpr_limit with interpolation, as in MVTec's trapezoid().
    correction = 0.0
    if not np.any(np.isclose(x, fpr_limit, rtol=0, atol=1e-12)):
        ins = int(np.searchsorted(x, fpr_limit, side="right"))
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (fpr_limit - x[ins - 1]) / (
            x[ins] - x[ins - 1]
        )
        correction = 0.5 * (y_interp + y[ins - 1]) * (fpr_limit - x[ins - 1])
    cut = x <= fpr_limit + 1e-12
    x, y = x[cut], y[cut]
    area = float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1]))) + correction
    return area / fpr_limit


# --------------------------------------------------------------------------- roc / auroc


def test_roc_curve_hand_case() -> None:
    fpr, tpr, thr = roc_curve(SCORES, LABELS)
    # Descending: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg).
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])


def test_roc_curve_groups_ties_into_one_point() -> None:
    fpr, tpr, thr = roc_curve([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.2])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])


def test_roc_curve_keeps_infinite_ties_together() -> None:
    # inf - inf is NaN: a diff-based grouping would split these two scores.
    fpr, tpr, thr = roc_curve([np.inf, np.inf, 0.0], [1, 0, 0])
    np.testing.assert_array_equal(thr, [np.inf, np.inf, 0.0])
    np.testing.assert_array_equal(tpr, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(fpr, [0.0, 0.5, 1.0])


def test_roc_curve_ignores_unknown_labels_and_nan_scores() -> None:
    fpr, tpr, thr = roc_curve([*SCORES, 0.99, np.nan], [*LABELS, -1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])


def test_roc_curve_single_class_gives_nan_rate() -> None:
    fpr, tpr, _ = roc_curve([0.1, 0.2], [1, 1])
    assert np.all(np.isnan(fpr))
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0])


def test_auroc_hand_case() -> None:
    # 0.35 beats 0.1 but not 0.4; 0.8 beats both: 3 of 4 pairs.
    assert auroc(SCORES, LABELS) == pytest.approx(0.75)
    assert image_auroc(SCORES, LABELS) == pytest.approx(0.75)


def test_auroc_counts_ties_half() -> None:
    # pos 0.5 ties neg 0.5 (1/2) and beats 0.2; pos 0.9 beats both: 3.5 / 4.
    assert auroc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(0.875)
    # All equal scores: every pair tied.
    assert auroc([0.3, 0.3, 0.3], [0, 1, 1]) == pytest.approx(0.5)


def test_auroc_inverted_scores() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1]) == pytest.approx(0.0)


def test_auroc_ignores_unknown_labels_and_nan_scores() -> None:
    scores = [*SCORES, 5.0, np.nan, -5.0]
    labels = [*LABELS, -1, 1, np.nan]
    assert auroc(scores, labels) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("scores", "labels"),
    [([0.1, 0.2, 0.3], [0, 0, 0]), ([0.1, 0.2], [1, 1]), ([0.1, 0.2], [1, -1]), ([], [])],
)
def test_auroc_single_class_is_nan(scores: list[float], labels: list[int]) -> None:
    assert math.isnan(auroc(scores, labels))
    assert math.isnan(image_auroc(scores, labels))


def test_auroc_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError):
        auroc([0.1, 0.2], [0])


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_roc_trapezoid_and_pairwise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    labels = (rng.random(n) < 0.3).astype(int)
    # Rounded scores give many ties; the positive shift gives a non-trivial AUROC.
    scores = np.round(rng.normal(size=n) + labels, 1)
    fpr, tpr, thr = roc_curve(scores, labels)
    assert np.all(np.diff(thr) < 0)
    assert len(thr) == len(np.unique(scores)) + 1
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    value = auroc(scores, labels)
    assert value == pytest.approx(area, abs=1e-12)
    assert value == pytest.approx(_pairwise_auroc(scores, labels), abs=1e-12)
    assert 0.55 < value < 0.95


# --------------------------------------------------------------------------- pixel auroc


def test_pixel_auroc_equals_auroc_of_flattened_pixels() -> None:
    rng = np.random.default_rng(7)
    masks = [np.zeros((8, 8)) for _ in range(4)]
    masks[1][2:5, 3:6] = 1.0
    masks[3][0:2, 0:4] = 255.0  # 0/255 masks are binarised by > 0.5 too
    maps = [np.round(rng.random((8, 8)) + 0.5 * (m > 0.5), 2).astype(np.float32) for m in masks]
    flat_scores = np.concatenate([m.ravel() for m in maps])
    flat_labels = np.concatenate([(m > 0.5).ravel() for m in masks]).astype(int)
    expected = auroc(flat_scores, flat_labels)
    assert 0.6 < expected < 1.0
    assert pixel_auroc(maps, masks) == pytest.approx(expected, abs=1e-12)
    # Same numbers as stacked 3-D arrays.
    assert pixel_auroc(np.stack(maps), np.stack(masks)) == pytest.approx(expected, abs=1e-12)


def test_pixel_auroc_hand_case_with_good_image_and_none_mask() -> None:
    # Image 1: defect pixels 0.9, 0.3; good pixels 0.1, 0.5.
    # Image 2 (all good, mask None): 0.2, 0.95.
    # Positives {0.9, 0.3} vs negatives {0.1, 0.5, 0.2, 0.95}: 0.9 beats 3, 0.3 beats 2 -> 5/8.
    map1 = np.array([[0.9, 0.3], [0.1, 0.5]])
    mask1 = np.array([[1, 1], [0, 0]])
    map2 = np.array([[0.2, 0.95]])
    assert pixel_auroc([map1, map2], [mask1, None]) == pytest.approx(5 / 8)


def test_pixel_auroc_ignores_nan_pixels() -> None:
    amap = np.array([[0.9, np.nan], [0.1, np.nan]])
    mask = np.array([[1, 0], [0, 1]])
    assert pixel_auroc([amap], [mask]) == pytest.approx(1.0)


def test_pixel_auroc_single_class_is_nan() -> None:
    assert math.isnan(pixel_auroc([np.ones((4, 4))], [np.zeros((4, 4))]))


def test_pixel_auroc_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        pixel_auroc([np.zeros((4, 4))], [np.zeros((4, 5))])
    with pytest.raises(ValueError):
        pixel_auroc([np.zeros((4, 4))], [np.zeros((4, 4)), np.zeros((4, 4))])


def test_pixel_auroc_chunked_path_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force many tiny chunks so the chunk loop itself is exercised.
    rng = np.random.default_rng(3)
    masks = [rng.random((10, 10)) < 0.2 for _ in range(3)]
    maps = [rng.random((10, 10)).astype(np.float32) + m for m in masks]
    expected = pixel_auroc(maps, masks)
    monkeypatch.setattr(metrics, "_CHUNK", 7)
    assert pixel_auroc(maps, masks) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- PRO


def test_pro_single_region_detected_at_zero_fpr_is_one() -> None:
    mask = np.zeros((5, 5))
    mask[1:3, 1:3] = 1
    amap = mask.copy()  # region scores 1, good pixels 0
    assert pro_score([amap], [mask]) == pytest.approx(1.0)


def test_pro_region_never_detected_is_zero() -> None:
    mask = np.zeros((5, 5))
    mask[1:3, 1:3] = 1
    amap = 1.0 - mask  # region scores below every good pixel
    assert pro_score([amap], [mask]) == pytest.approx(0.0)


def _two_region_case() -> tuple[list[np.ndarray], list[np.ndarray]]:
    # Image 1 (2x3): region R1 of 2 pixels, both 0.9; good pixels 0.5, 0, 0, 0.
    map1 = np.array([[0.9, 0.9, 0.5], [0.0, 0.0, 0.0]])
    mask1 = np.array([[1, 1, 0], [0, 0, 0]])
    # Image 2 (2x5): region R2 of 4 pixels, one 0.9 and three 0.2; good 0.2, 0 x 5.
    map2 = np.array([[0.9, 0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0]])
    mask2 = np.array([[1, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
    return [map1, map2], [mask1, mask2]


@pytest.mark.parametrize(
    ("fpr_limit", "expected"),
    [
        # Curve (FPR, PRO), 10 good pixels, regions averaged (not pixels):
        # (0,0) -> t=0.9: (0, (1 + 1/4)/2 = 0.625) -> t=0.5: (0.1, 0.625)
        # -> t=0.2: (0.2, 1.0) -> t=0: (1, 1).
        # Up to 0.3: 0.1*0.625 + 0.1*(0.625+1)/2 + 0.1*1 = 0.24375 -> / 0.3.
        (0.3, 0.24375 / 0.3),
        # Up to 0.15: interpolated PRO(0.15) = 0.8125; 0.0625 + 0.05*(0.625+0.8125)/2.
        (0.15, (0.0625 + 0.05 * (0.625 + 0.8125) / 2) / 0.15),
        # Exactly at a curve point.
        (0.2, (0.0625 + 0.08125) / 0.2),
        # Whole curve: 0.0625 + 0.08125 + 0.8 * 1.
        (1.0, 0.94375),
    ],
)
def test_pro_two_regions_hand_case(fpr_limit: float, expected: float) -> None:
    maps, masks = _two_region_case()
    assert pro_score(maps, masks, fpr_limit=fpr_limit) == pytest.approx(expected, abs=1e-12)


def test_pro_default_limit_is_0_3() -> None:
    maps, masks = _two_region_case()
    assert pro_score(maps, masks) == pytest.approx(0.8125, abs=1e-12)


def test_pro_uses_eight_connectivity() -> None:
    # Pixels (0,0),(0,1) and (1,2): one region under 8-connectivity ((0,1)-(1,2) diagonal),
    # two regions (areas 2 and 1) under 4-connectivity.
    mask = np.zeros((4, 4))
    mask[0, 0] = mask[0, 1] = mask[1, 2] = 1
    amap = np.full((4, 4), 0.5)
    amap[0, 0] = amap[0, 1] = 1.0  # detected
    amap[1, 2] = 0.0  # never detected before all good pixels
    # 8-connected: PRO = 2/3 for all FPR < 1 (4-connectivity would give (1 + 0) / 2).
    assert pro_score([amap], [mask]) == pytest.approx(2 / 3)


def test_pro_accepts_good_images_and_none_masks() -> None:
    maps, masks = _two_region_case()
    # An extra all-good image with 10 good pixels at 0 doubles n_ok to 20: the FPR steps
    # halve, so the curve is (0,0.625) -> (0.05,0.625) -> (0.1,1) -> (1,1).
    extra = np.zeros((2, 5))
    expected = (0.05 * 0.625 + 0.05 * (0.625 + 1) / 2 + 0.2 * 1) / 0.3
    assert pro_score([*maps, extra], [*masks, None]) == pytest.approx(expected, abs=1e-12)
    assert pro_score([*maps, extra], [*masks, np.zeros((2, 5))]) == pytest.approx(
        expected, abs=1e-12
    )


def test_pro_nan_pixels_are_never_detected() -> None:
    mask = np.zeros((3, 3))
    mask[0, 0] = mask[0, 1] = 1
    amap = np.zeros((3, 3))
    amap[0, 0] = 1.0
    amap[0, 1] = np.nan
    # Half of the single region found at FPR 0; the NaN half only at the very end.
    assert pro_score([amap], [mask]) == pytest.approx(0.5)


def test_pro_without_regions_or_good_pixels_is_nan() -> None:
    assert math.isnan(pro_score([np.ones((3, 3))], [np.zeros((3, 3))]))
    assert math.isnan(pro_score([np.ones((3, 3))], [None]))
    assert math.isnan(pro_score([np.ones((3, 3))], [np.ones((3, 3))]))


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_pro_rejects_bad_limit(bad: float) -> None:
    maps, masks = _two_region_case()
    with pytest.raises(ValueError):
        pro_score(maps, masks, fpr_limit=bad)


def test_pro_rejects_non_2d_maps() -> None:
    with pytest.raises(ValueError):
        pro_score([np.zeros((2, 3, 3))], [np.zeros((2, 3, 3))])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fpr_limit", [0.05, 0.3, 1.0])
def test_pro_matches_literal_sorted_cumulative_reference(
    seed: int, fpr_limit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    maps, masks = [], []
    for _ in range(4):
        mask = np.zeros((16, 16))
        for _ in range(rng.integers(0, 3)):
            r, c = rng.integers(0, 13, size=2)
            h, w = rng.integers(1, 4, size=2)
            mask[r : r + h, c : c + w] = 1
        # Quantised scores: many ties between good and defect pixels.
        maps.append(np.round(rng.random((16, 16)) * 0.7 + 0.4 * mask, 1).astype(np.float32))
        masks.append(mask)
    masks[0][5:9, 5:9] = 1  # at least one region in every case
    expected = _reference_pro(maps, masks, fpr_limit)
    assert pro_score(maps, masks, fpr_limit=fpr_limit) == pytest.approx(expected, abs=1e-9)
    monkeypatch.setattr(metrics, "_CHUNK", 5)  # exercise the chunk loop as well
    assert pro_score(maps, masks, fpr_limit=fpr_limit) == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- F1


def test_f1_optimal_threshold_hand_case() -> None:
    # t=0.8: P 1, R .5, F1 2/3; t=0.4: F1 .5; t=0.35: P 2/3, R 1, F1 .8; t=0.1: F1 2/3.
    t, f1, p, r = f1_optimal_threshold(SCORES, LABELS)
    assert t == 0.35
    assert f1 == pytest.approx(0.8)
    assert p == pytest.approx(2 / 3)
    assert r == pytest.approx(1.0)


def test_f1_optimal_threshold_with_ties_picks_lowest_score_when_best() -> None:
    # t=0.9: tp1 fp0 F1 .5; t=0.6 (tie pos/neg): tp2 fp1 F1 2/3; t=0.3: tp2 fp2 F1 4/7;
    # t=0.2: tp3 fp2 F1 6/8 = .75 (best).
    t, f1, p, r = f1_optimal_threshold([0.9, 0.6, 0.6, 0.3, 0.2], [1, 1, 0, 0, 1])
    assert t == 0.2
    assert f1 == pytest.approx(0.75)
    assert p == pytest.approx(0.6)
    assert r == pytest.approx(1.0)


def test_f1_optimal_threshold_prefers_highest_threshold_on_equal_f1() -> None:
    # t=0.9: tp1 fp0 -> F1 2/3; t=0.5: tp2 fp2 -> F1 2/3 as well; the higher one wins.
    t, f1, _, _ = f1_optimal_threshold([0.9, 0.5, 0.5, 0.5], [1, 1, 0, 0])
    assert t == 0.9
    assert f1 == pytest.approx(2 / 3)


def test_f1_optimal_threshold_without_defects_is_nan() -> None:
    assert all(math.isnan(v) for v in f1_optimal_threshold([0.1, 0.2], [0, -1]))


# --------------------------------------------------------------------------- strict rule


def test_confusion_is_strictly_greater() -> None:
    # t=0.4: only 0.8 is NG; 0.4 (good) equals t and is OK.
    assert confusion(SCORES, LABELS, 0.4) == {"tp": 1, "fp": 0, "tn": 2, "fn": 1}
    # t=0.35: 0.4 and 0.8 NG; the defect at exactly 0.35 is a miss.
    assert confusion(SCORES, LABELS, 0.35) == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    assert confusion(SCORES, LABELS, 0.0) == {"tp": 2, "fp": 2, "tn": 0, "fn": 0}


def test_confusion_ignores_unknown_and_nan() -> None:
    result = confusion([*SCORES, 0.9, np.nan], [*LABELS, -1, 0], 0.4)
    assert result == {"tp": 1, "fp": 0, "tn": 2, "fn": 1}


def test_precision_recall_f1_hand_cases() -> None:
    # t=0.35: tp1 fp1 fn1.
    assert precision_recall_f1(SCORES, LABELS, 0.35) == pytest.approx((0.5, 0.5, 0.5))
    # t=0.0: tp2 fp2 fn0 -> P .5, R 1, F1 2/3.
    assert precision_recall_f1(SCORES, LABELS, 0.0) == pytest.approx((0.5, 1.0, 2 / 3))
    # t=0.8: nothing NG: 0/0 precision -> 0.
    assert precision_recall_f1(SCORES, LABELS, 0.8) == (0.0, 0.0, 0.0)
    # No defects at all: recall 0/0 -> 0.
    assert precision_recall_f1([0.1, 0.9], [0, 0], 0.5) == (0.0, 0.0, 0.0)


def test_f1_threshold_under_strict_rule_needs_nextafter() -> None:
    # Documents the >= vs > difference between f1_optimal_threshold and confusion.
    t, f1, p, r = f1_optimal_threshold(SCORES, LABELS)
    assert precision_recall_f1(SCORES, LABELS, t) != pytest.approx((p, r, f1))
    assert precision_recall_f1(SCORES, LABELS, np.nextafter(t, -np.inf)) == pytest.approx(
        (p, r, f1)
    )


# --------------------------------------------------------------------------- FRR threshold


GOOD10 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


@pytest.mark.parametrize(
    ("max_frr", "expected"),
    [
        (0.0, 1.0),  # no good sample may exceed: the highest good score
        (0.1, 0.9),  # one may: only 1.0 > 0.9
        (0.25, 0.8),  # k = 2
        (0.3, 0.7),  # 0.3 * 10 must give k = 3 exactly
        (0.9, 0.1),  # k = 9: only the lowest good sample is kept
    ],
)
def test_threshold_for_false_reject_rate_hand_cases(max_frr: float, expected: float) -> None:
    # Defects (label 1) and unknowns (-1) must not move the threshold.
    scores = [*GOOD10, 0.05, 2.0, 0.95]
    labels = [0] * 10 + [1, 1, -1]
    assert threshold_for_false_reject_rate(scores, labels, max_frr) == expected


def test_threshold_for_false_reject_rate_float_rounding() -> None:
    # 0.29 * 100 == 28.999999999999996 in floats; 29 rejects out of 100 is still allowed.
    scores = np.arange(100) / 100.0
    t = threshold_for_false_reject_rate(scores, np.zeros(100), 0.29)
    assert t == scores[70]
    assert np.count_nonzero(scores > t) == 29


def test_threshold_for_false_reject_rate_ties() -> None:
    # Three goods tied at 0.5: anything below 0.5 rejects 3 > 2 allowed, so t = 0.5.
    assert threshold_for_false_reject_rate([0.5, 0.5, 0.5, 0.1], [0, 0, 0, 0], 0.5) == 0.5


@pytest.mark.parametrize("seed", range(3))
def test_threshold_for_false_reject_rate_is_lowest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(200), 2)
    labels = (rng.random(200) < 0.2).astype(int)
    good = scores[labels == 0]
    for max_frr in (0.0, 0.01, 0.05, 0.123, 0.5):
        t = threshold_for_false_reject_rate(scores, labels, max_frr)
        assert np.mean(good > t) <= max_frr
        assert np.mean(good > np.nextafter(t, -np.inf)) > max_frr


def test_threshold_for_false_reject_rate_edges() -> None:
    assert threshold_for_false_reject_rate([0.1, 0.2], [0, 0], 1.0) == -np.inf
    assert math.isnan(threshold_for_false_reject_rate([0.1, 0.2], [1, -1], 0.1))
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError):
            threshold_for_false_reject_rate([0.1, 0.2], [0, 0], bad)
