"""Threshold checks and the threshold history (core/thresholds.py)."""

from __future__ import annotations

import math

import pytest

from patchcore_gui.core.thresholds import check_thresholds, history_lines, metadata_with_threshold


@pytest.mark.parametrize(
    ("image", "review", "pixel", "fragment"),
    [
        (-1.0, None, None, "image threshold must be a finite number >= 0, got -1.0"),
        (-1e9, None, None, "image threshold must be a finite number >= 0"),
        (math.nan, None, None, "image threshold must be a finite number >= 0, got nan"),
        (math.inf, None, None, "got inf"),
        (5.0, 6.0, None, "review start 6 lies above the image threshold 5"),
        (5.0, -0.5, None, "review start must be a finite number >= 0"),
        (5.0, math.inf, None, "review start must be a finite number >= 0"),
        (5.0, None, -2.0, "pixel threshold must be a finite number >= 0"),
        (5.0, None, math.nan, "pixel threshold must be a finite number >= 0"),
    ],
)
def test_bad_thresholds_are_refused_in_one_line(image: float, review: float | None, pixel: float | None,
                                                fragment: str) -> None:
    with pytest.raises(ValueError) as ei:
        check_thresholds(image, review, pixel)
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_usable_thresholds_pass() -> None:
    check_thresholds(5.0, 5.0, 0.0)  # an empty band and a zero pixel threshold are allowed
    check_thresholds(5.0, math.nan, None)  # NaN review start: no band
    check_thresholds(None, 3.0, None)  # image not being set: the band alone is not compared
    check_thresholds(0.0)


def test_history_records_who_what_and_old_to_new() -> None:
    meta = {"threshold": {"image": 10.0, "pixel": 4.0, "history": []}}
    new = metadata_with_threshold(meta, 12.0, "line 3", review_from=9.0, user="qe")
    assert meta["threshold"]["image"] == 10.0  # the input is not modified
    th = new["threshold"]
    assert (th["image"], th["review_from"], th["pixel"]) == (12.0, 9.0, 4.0)
    e = th["history"][-1]
    assert e["user"] == "qe" and e["note"] == "line 3"
    assert (e["old_image"], e["image"], e["review_from"]) == (10.0, 12.0, 9.0)
    assert math.isnan(e["old_review_from"])
    assert "pixel" not in e  # unchanged values are not listed
    assert history_lines(new) == [f"{e['time']} qe: image 10 -> 12, review from none -> 9 (line 3)"]


def test_history_refuses_a_band_above_a_lowered_threshold() -> None:
    meta = {"threshold": {"image": 10.0, "review_from": 8.0}}
    with pytest.raises(ValueError, match="review start 8 lies above the image threshold 7"):
        metadata_with_threshold(meta, 7.0, user="qe")
    # Turning the band off (NaN) at the same time is fine.
    assert math.isnan(metadata_with_threshold(meta, 7.0, review_from=math.nan, user="qe")["threshold"]["review_from"])
