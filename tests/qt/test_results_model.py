"""The results table model: Qt model contract, sort, filter, search, 100k rows, PySide trap."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt

from patchcore_gui.core.result_table import ResultTable
from patchcore_gui.qt.results_model import (
    COL_FILE,
    COL_NORM,
    COL_SCORE,
    COL_TRUTH,
    COL_VERDICT,
    ResultsTableModel,
)


@pytest.fixture
def filled(synthetic: Callable) -> Callable:
    """``filled(n, threshold=6.0, chunk=0)`` -> (model, store) with ``n`` synthetic results."""

    def make(n: int, threshold: float = 6.0, chunk: int = 0) -> tuple[ResultsTableModel, ResultTable]:
        return filled_model(synthetic, n, threshold, chunk)

    return make


def filled_model(
    synthetic: Callable, n: int, threshold: float, chunk: int
) -> tuple[ResultsTableModel, ResultTable]:
    image_set, scores, grids, errors = synthetic(n)
    store = ResultTable(image_set)
    model = ResultsTableModel()
    model.set_store(store)
    model.set_threshold(threshold)
    step = chunk or n
    # Arrival in a shuffled order, like batches from several loader workers.
    order = np.random.default_rng(1).permutation(n)
    for start in range(0, n, step):
        idx = order[start : start + step]
        store.add(idx, scores[idx], grids[idx], [errors[i] for i in idx])
        model.publish()
    return model, store


def column(model: ResultsTableModel, col: int) -> list[str]:
    return [model.data(model.index(r, col)) for r in range(model.rowCount())]


def test_model_passes_qt_model_tester(filled: Callable, qtmodeltester: object) -> None:
    model, _ = filled(300, chunk=64)
    qtmodeltester.check(model, force_py=True)  # type: ignore[attr-defined]
    model.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
    model.set_filter("ng")
    model.set_search("bad")
    qtmodeltester.check(model, force_py=True)  # type: ignore[attr-defined]


def test_rows_arrive_in_chunks_and_match_the_store(filled: Callable) -> None:
    model, store = filled(1000, chunk=250)
    assert model.rowCount() == store.count == 1000
    assert sorted(model.rows.tolist()) == list(range(1000))
    assert model.columnCount() == 6
    assert model.rowCount(model.index(0, 0)) == 0  # a table: no children


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_sort_by_score_puts_errors_last(filled: Callable, order: Qt.SortOrder) -> None:
    model, store = filled(500)
    model.sort(COL_SCORE, order)
    s = store.scores[model.rows]
    finite = s[~np.isnan(s)]
    assert np.isnan(s[len(finite) :]).all()
    expected = np.sort(finite) if order == Qt.SortOrder.AscendingOrder else np.sort(finite)[::-1]
    np.testing.assert_array_equal(finite, expected)


def test_sort_by_name_verdict_and_truth(filled: Callable) -> None:
    model, store = filled(400)
    model.sort(COL_FILE, Qt.SortOrder.AscendingOrder)
    names = column(model, COL_FILE)
    assert names == sorted(names, key=str.lower)
    model.sort(COL_VERDICT, Qt.SortOrder.DescendingOrder)
    words = column(model, COL_VERDICT)
    assert words == sorted(words, key={"error": 2, "NG": 1, "OK": 0}.__getitem__, reverse=True)
    model.sort(COL_TRUTH, Qt.SortOrder.AscendingOrder)
    truth = column(model, COL_TRUTH)
    assert truth.index("crack") > max(i for i, t in enumerate(truth) if t == "good")
    model.sort(-1)
    np.testing.assert_array_equal(model.rows, store.order[: store.count])


def test_sort_keeps_persistent_indexes_on_their_image(filled: Callable) -> None:
    model, _ = filled(200)
    image = model.image_at(17)
    p = QPersistentModelIndex(model.index(17, COL_SCORE))
    model.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert model.image_at(p.row()) == image
    assert p.column() == COL_SCORE


def test_filters_match_numpy(filled: Callable) -> None:
    model, store = filled(700)
    t = 6.0
    s, lab = store.scores, store.labels
    with np.errstate(invalid="ignore"):
        expected = {
            "all": 700,
            "ng": int(np.sum(s > t)),
            "ok": int(np.sum(s <= t)),
            "errors": int(np.isnan(s).sum()),
            "fp": int(np.sum((s > t) & (lab == 0))),
            "fn": int(np.sum((s <= t) & (lab == 1))),
        }
    for kind, count in expected.items():
        model.set_filter(kind)
        assert model.rowCount() == count, kind
    model.set_filter("errors")
    assert set(column(model, COL_VERDICT)) == {"error"}
    assert set(column(model, COL_SCORE)) == {"—"}
    with pytest.raises(ValueError):
        store.filter_mask(model.rows, "bogus", t)


def test_threshold_change_updates_verdicts_norm_and_filter(filled: Callable) -> None:
    model, store = filled(300)
    model.set_filter("ng")
    before = model.rowCount()
    model.set_threshold(4.0)
    assert model.rowCount() > before
    assert set(column(model, COL_VERDICT)) == {"NG"}
    model.set_filter("all")
    row = int(np.flatnonzero(~np.isnan(store.scores[model.rows]))[0])
    i = model.image_at(row)
    assert float(model.data(model.index(row, COL_NORM))) == pytest.approx(store.scores[i] / 4.0, abs=1e-3)


@pytest.mark.parametrize("col", [COL_FILE, COL_SCORE, COL_TRUTH, COL_VERDICT])
def test_filtered_rows_keep_the_sort_order_as_rows_arrive(synthetic: Callable, col: int) -> None:
    """Threshold moves filter a kept sorted order: it must equal sorting the filtered rows."""
    image_set, scores, grids, errors = synthetic(900)
    store = ResultTable(image_set)
    model = ResultsTableModel()
    model.set_store(store)
    model.sort(col, Qt.SortOrder.DescendingOrder)
    model.set_filter("ng")
    order = np.random.default_rng(4).permutation(900)
    for start in (0, 300, 600):  # rows arrive between threshold moves
        idx = order[start : start + 300]
        store.add(idx, scores[idx], grids[idx], [errors[i] for i in idx])
        model.publish()
        for t in (4.0, 7.5, 5.0):
            model.set_threshold(t)
            base = store.order[: store.count]
            kept = base[store.filter_mask(base, "ng", t)]
            np.testing.assert_array_equal(model.rows, model._sorted(kept))
            assert model.rowCount() == int(np.sum(store.scores[base] > t))


def test_search_is_case_insensitive_substring(filled: Callable) -> None:
    model, store = filled(300)
    model.set_search("BAD/IMG_0000")
    names = column(model, COL_FILE)
    assert names and all("bad/img_0000" in n for n in names)
    model.set_search("")
    assert model.rowCount() == 300


def test_verdict_cell_has_word_colour_and_marker(filled: Callable) -> None:
    model, store = filled(50)
    model.set_filter("ng")
    idx = model.index(0, COL_VERDICT)
    assert model.data(idx) == "NG"
    assert model.data(idx, Qt.ItemDataRole.ForegroundRole).name() == "#e5534b"
    assert model.data(idx, Qt.ItemDataRole.DecorationRole) is not None
    model.set_filter("errors")
    err = model.index(0, COL_FILE)
    assert "not a recognised image format" in model.data(err, Qt.ItemDataRole.ToolTipRole)


def test_hundred_thousand_rows_threshold_and_sort_are_correct(filled: Callable) -> None:
    n = 100_000
    model, store = filled(n, chunk=5000)  # 20 big inserts, as the flush timer does
    assert model.rowCount() == n
    model.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
    for t in (3.0, 5.5, 9.0):
        model.set_threshold(t)
        model.set_filter("ng")
        assert model.rowCount() == int(np.sum(store.scores > t))
        # Sorted descending: the last NG row is the lowest score above t.
        assert store.scores[model.image_at(model.rowCount() - 1)] > t
        model.set_filter("all")
        c = store.counts(t)
        assert c["ok"] + c["ng"] + c["error"] == n


def test_pyside_insert_and_reset_cycles_keep_none_refcount_stable(filled: Callable, synthetic: Callable) -> None:
    """PySide6 6.12.0 on Python 3.11 leaks a None reference per insert/reset and aborts."""
    model, store = filled(10)
    image_set, scores, grids, errors = synthetic(3000, seed=3)
    big = ResultTable(image_set)
    model.set_store(big)
    before = sys.getrefcount(None)
    for i in range(3000):
        big.add(np.array([i]), scores[i : i + 1], grids[i : i + 1], [errors[i]])
        model.publish()  # one beginInsertRows / endInsertRows pair per call
        if i % 10 == 0:
            model.set_filter("ng" if i % 20 else "all")  # beginResetModel / endResetModel
    after = sys.getrefcount(None)
    assert abs(after - before) < 100, (before, after)
    assert model.filter_kind == "ng"
    assert model.rowCount() == int(np.sum(big.scores > 6.0))
