"""ResultTable's per-row columns made on demand or kept between threshold moves (issue 15 point 5)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.path_list import PathList
from patchcore_gui.core.result_table import ResultTable

ROOT = os.path.join(os.sep, "data", "line3")


def _table(names: list[str], labels: list[int], types: list[str], lazy: bool = True) -> ResultTable:
    strings = [os.path.join(ROOT, *n.split("/")) for n in names]
    n = len(names)
    return ResultTable(ImageSet(
        root=Path(ROOT), paths=PathList(strings) if lazy else [Path(s) for s in strings],
        labels=np.array(labels, dtype=np.int8), mask_paths=[None] * n, defect_types=types, layout="mvtec"))


@pytest.mark.parametrize("lazy", [True, False])
def test_names_are_relative_to_the_common_folder(lazy: bool) -> None:
    st = _table(["good/B.png", "crack/a.png", "good/c.png"], [0, 1, 0], ["good", "crack", "good"], lazy)
    assert st.names[0] == "good/B.png" and st.names[-1] == "good/c.png"
    assert list(st.names) == ["good/B.png", "crack/a.png", "good/c.png"]
    assert st.names[1:] == ["crack/a.png", "good/c.png"]
    assert len(st.names) == 3
    assert st.paths == [os.path.join(ROOT, "good", "B.png"), os.path.join(ROOT, "crack", "a.png"),
                        os.path.join(ROOT, "good", "c.png")]
    # Case-insensitive rank: crack/a < good/B < good/c.
    assert st.name_rank.tolist() == [1, 0, 2]
    assert st.search_mask("GOOD/").tolist() == [True, False, True]


def test_truth_rank_good_then_defect_types_alphabetically_then_unknown() -> None:
    st = _table([f"{i}.png" for i in range(6)], [0, 1, 1, -1, 1, 0],
                ["good", "scratch", "crack", "", "crack", "good"])
    assert st.truth_rank.tolist() == [0, 2, 1, 4, 1, 0]
    assert [st.truth(i) for i in range(6)] == ["good", "scratch", "crack", "", "crack", "good"]


def test_kept_scored_columns_follow_arriving_rows() -> None:
    st = _table([f"{i}.png" for i in range(5)], [0, 1, 0, 1, -1], ["good", "crack", "good", "crack", ""])
    grids = np.zeros((2, 2, 2), dtype=np.float32)
    st.add(np.array([3, 1]), np.array([8.0, -2.5], dtype=np.float32), grids, ["", ""])
    scores, labels = st.scored()
    assert scores.tolist() == [8.0, -2.5] and labels.tolist() == [1, 1]
    assert st.finite_score_range() == (-2.5, 8.0)
    assert st.counts(5.0) == {"ok": 1, "review": 0, "ng": 1, "error": 0, "total": 2}
    with pytest.raises(ValueError):
        scores[0] = 0.0  # shared with every caller: read-only
    st.add(np.array([0, 4]), np.array([12.0, np.nan], dtype=np.float32), grids, ["", "unreadable"])
    scores, labels = st.scored()
    assert scores[:3].tolist() == [8.0, -2.5, 12.0] and np.isnan(scores[3]) and labels.tolist() == [1, 1, 0, -1]
    assert st.finite_score_range() == (-2.5, 12.0)
    assert st.counts(5.0, review_from=0.0) == {"ok": 1, "review": 0, "ng": 2, "error": 1, "total": 4}
    assert st.counts(10.0, review_from=0.0) == {"ok": 1, "review": 1, "ng": 1, "error": 1, "total": 4}


@pytest.mark.parametrize("kind", ["ng", "ok", "review", "errors", "fp", "fn"])
def test_filter_mask_with_gathered_columns_equals_without(kind: str) -> None:
    rng = np.random.default_rng(3)
    n = 500
    labels = rng.integers(-1, 2, n)
    st = _table([f"{i:03d}.png" for i in range(n)], labels.tolist(), ["crack" if v > 0 else "" for v in labels])
    scores = rng.gamma(3.0, 1.0, n).astype(np.float32)
    scores[::31] = np.nan
    idx = rng.permutation(n)[: n - 50]  # 50 never arrive: pending
    st.add(idx, scores[idx], np.zeros((len(idx), 1, 1)), ["bad" if np.isnan(scores[i]) else "" for i in idx])
    rows = rng.permutation(n)
    for threshold, band in ((3.0, float("nan")), (3.0, 2.0), (5.5, 1.0)):
        plain = st.filter_mask(rows, kind, threshold, band)
        given = st.filter_mask(rows, kind, threshold, band, scores=st.scores[rows].astype(np.float64),
                               labels=st.labels[rows])
        assert np.array_equal(plain, given)
        # Each filter picks some rows here (the comparison means something); no band: no REVIEW.
        assert plain.any() != (kind == "review" and np.isnan(band))
