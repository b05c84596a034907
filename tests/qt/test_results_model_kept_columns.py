"""The table model keeps its sort order's scores and labels between threshold moves (issue 15
point 5): whatever arrived, sorted, filtered or moved before, the rows shown are those a
model set up afresh in the same state shows, and those numpy says pass the filter."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PySide6.QtCore import Qt

from patchcore_gui.core.result_table import ResultTable
from patchcore_gui.core.verdict import ng_mask
from patchcore_gui.qt.results_model import COL_FILE, COL_SCORE, COL_TRUTH, ResultsTableModel

DESC, ASC = Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder


def fresh(store: ResultTable, sort: tuple[int, Qt.SortOrder], kind: str, threshold: float,
          band: float) -> ResultsTableModel:
    m = ResultsTableModel()
    m.set_store(store)
    m.set_threshold(threshold, band)
    m.publish()
    m.sort(*sort)
    m.set_filter(kind)
    return m


@pytest.mark.parametrize("sort", [(COL_SCORE, DESC), (COL_FILE, ASC), (COL_TRUTH, DESC), (-1, ASC)])
def test_rows_after_moves_and_arrivals_match_a_fresh_model(synthetic: Callable, sort: tuple[int, Qt.SortOrder]) -> None:
    n = 3000
    image_set, scores, grids, errors = synthetic(n, 5)
    store = ResultTable(image_set)
    model = ResultsTableModel()
    model.set_store(store)
    model.set_threshold(6.0)
    model.sort(*sort)
    arrival = np.random.default_rng(2).permutation(n)
    rng = np.random.default_rng(7)
    band = float("nan")
    checked = 0
    for start in range(0, n, 1000):  # a live run: rows arrive between moves
        idx = arrival[start : start + 1000]
        store.add(idx, scores[idx], grids[idx], [errors[i] for i in idx])
        model.publish()
        for kind in ("ng", "fp", "fn", "ok", "review", "all"):
            model.set_filter(kind)
            for threshold in rng.uniform(2.0, 12.0, 3):
                band = float(threshold) - 1.5 if kind == "review" else float("nan")
                model.set_threshold(float(threshold), band)
                want = fresh(store, sort, kind, float(threshold), band)
                assert np.array_equal(model.rows, want.rows), (kind, threshold)
                checked += len(want.rows) > 0
        shown = store.order[: store.count]
        model.set_filter("ng")
        model.set_threshold(7.0, float("nan"))
        assert model.rowCount() == int(np.count_nonzero(ng_mask(store.scores[shown], 7.0)))
        assert set(model.rows.tolist()) == set(shown[ng_mask(store.scores[shown], 7.0)].tolist())
    assert checked > 40  # most states show some rows


def test_a_new_store_drops_the_kept_columns(synthetic: Callable) -> None:
    model = ResultsTableModel()
    for n, seed in ((400, 1), (250, 2)):
        image_set, scores, grids, errors = synthetic(n, seed)
        store = ResultTable(image_set)
        store.add(np.arange(n), scores, grids, errors)
        model.set_store(store)
        model.publish()
        model.sort(COL_SCORE, DESC)
        model.set_filter("fp")
        model.set_threshold(5.0)
        want = np.flatnonzero(ng_mask(scores, 5.0) & (image_set.labels == 0))
        assert sorted(model.rows.tolist()) == want.tolist()
