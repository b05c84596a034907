"""The review band in the window: control, both lines, counts, filter, confusion, log; fields refusing values."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.verdict import verdict
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_VERDICT
from patchcore_gui.qt.threshold_panel import ThresholdPanel


def fill(w: MainWindow, synthetic: Callable, n: int = 700) -> np.ndarray:
    """``n`` synthetic results in the window (labels: every 7th a defect); the controls live."""
    image_set, scores, grids, errors = synthetic(n)
    w.doc.set_folder(image_set)
    w.doc.new_results()
    assert w.store is not None
    w.store.add(np.arange(n), scores, grids, errors)
    w.view.flush()
    w.threshold_panel.set_enabled(True)  # as an open model makes them
    return scores


def type_into(field: object, text: str) -> None:
    """Select the field's text, type ``text`` and press Enter, as a user does."""
    field.setFocus()  # type: ignore[attr-defined]
    field.lineEdit().selectAll()  # type: ignore[attr-defined]
    QTest.keyClicks(field, text)  # type: ignore[arg-type]
    QTest.keyClick(field, Qt.Key.Key_Return)  # type: ignore[arg-type]


def in_band(scores: np.ndarray, thr: float, rf: float) -> np.ndarray:
    return (scores > rf) & (scores <= thr)


def test_band_control_is_off_by_default_and_switches_on_below_the_threshold(qtbot: object) -> None:
    panel = ThresholdPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    panel.set_enabled(True)
    panel.set_scores(np.linspace(1.0, 9.0, 50), np.empty(0))
    panel.set_threshold(6.0)
    assert not panel.review_check.isChecked() and not panel.band.line.isVisible()
    assert not panel.review_spin.isEnabled() and panel.review_label.isHidden()
    edited: list[float] = []
    committed: list[bool] = []
    panel.review_edited.connect(edited.append)
    panel.review_committed.connect(lambda: committed.append(True))
    panel.review_check.setChecked(True)
    assert len(edited) == 1 and 0 <= edited[0] < 6.0 and committed == [True]
    panel.set_review_from(edited[0])  # what the document sends back
    assert panel.band.line.isVisible() and panel.band.region.isVisible() and panel.review_spin.isEnabled()
    lo, hi = panel.band.region.getRegion()
    assert lo == pytest.approx(edited[0]) and hi == pytest.approx(6.0)
    panel.review_check.setChecked(False)
    assert math.isnan(edited[-1])  # off
    panel.set_review_from(math.nan)
    assert not panel.band.line.isVisible() and not panel.band.region.isVisible()


def test_dragging_either_line_moves_its_value_and_stops_at_the_other(window: MainWindow, synthetic: Callable) -> None:
    w = window
    scores = fill(w, synthetic)
    panel = w.threshold_panel
    w.set_threshold(8.0)
    panel.review_check.setChecked(True)
    panel.band.line.setValue(panel.scale.to_view(5.0))  # drag the band's start (emits sigPositionChanged)
    assert w.doc.review_from == pytest.approx(5.0)
    n_band = int(in_band(scores, 8.0, 5.0).sum())
    n_ng = int((scores > 8.0).sum())
    errors = int(np.isnan(scores).sum())
    assert panel.review_label.text() == f"REVIEW {n_band:,}" and panel.ng_label.text() == f"NG {n_ng:,}"
    assert panel.ok_label.text() == f"OK {len(scores) - n_band - n_ng - errors:,}"
    panel.line.setValue(panel.scale.to_view(7.0))  # drag the threshold line
    assert w.threshold == pytest.approx(7.0)
    assert panel.review_label.text() == f"REVIEW {int(in_band(scores, 7.0, 5.0).sum()):,}"
    lo, hi = panel.band.region.getRegion()  # in the axis' coordinates (log here)
    assert (lo, hi) == (pytest.approx(panel.scale.to_view(5.0)), pytest.approx(panel.scale.to_view(7.0)))
    # Each line stops at the other: the band's start never lies above the threshold.
    panel.line.setValue(panel.scale.to_view(3.0))
    assert w.threshold == pytest.approx(5.0) and w.doc.review_from == pytest.approx(5.0)
    panel.line.setValue(panel.scale.to_view(7.0))
    panel.band.line.setValue(panel.scale.to_view(9.5))
    assert w.doc.review_from == pytest.approx(7.0) and w.threshold == pytest.approx(7.0)
    assert panel.review_label.text() == "REVIEW 0"  # an empty band: nothing is REVIEW


def test_table_filter_and_confusion_know_review(window: MainWindow, synthetic: Callable) -> None:
    w = window
    scores = fill(w, synthetic)
    labels = w.store.labels
    assert not w.results.filter_buttons["review"].isVisibleTo(w.results)
    w.set_threshold(8.0)
    w.doc.set_review_from(5.0)
    assert w.results.filter_buttons["review"].isVisibleTo(w.results)
    band = in_band(scores, 8.0, 5.0)
    w.results.set_filter("review")
    m = w.table_model
    assert m.rowCount() == int(band.sum())
    assert all(m.data(m.index(r, COL_VERDICT)) == "REVIEW" for r in range(m.rowCount()))
    assert "REVIEW" in w.results.count_label.text()
    w.results.set_filter("all")
    for r in range(0, m.rowCount(), 37):  # every word the table shows is the rule's
        i = m.image_at(r)
        s = float(scores[i])
        assert m.data(m.index(r, COL_VERDICT)) == (verdict(s, 8.0, 5.0) or "error")
    mp = w.metrics_panel
    good, defect = int((band & (labels == 0)).sum()), int((band & (labels > 0)).sum())
    assert mp.review == {"good": good, "defect": defect} and good > 0 and defect > 0
    assert mp.cells["rg"].text() == f"{good:,}" and mp.cells["rd"].text() == f"{defect:,}"
    # The counts at the threshold are those without the band; the OK cells lose the REVIEW ones.
    assert mp.confusion["fp"] == int(((scores > 8.0) & (labels == 0)).sum())
    assert mp.cells["tn"].text() == f"{mp.confusion['tn'] - good:,}"
    # Band off: the filter falls back to All and the column goes.
    w.results.set_filter("review")
    w.doc.set_review_from(math.nan)
    assert w.table_model.filter_kind == "all" and not w.results.filter_buttons["review"].isVisibleTo(w.results)
    assert not mp.cells["rg"].isVisibleTo(mp) and mp.review == {"good": 0, "defect": 0}


def test_fields_refuse_bad_values_and_the_axis_stays(window: MainWindow, synthetic: Callable, qtbot: object) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    fill(w, synthetic)
    panel = w.threshold_panel
    w.set_threshold(8.0)
    w.doc.set_review_from(5.0)
    axis = panel.plot.getViewBox().viewRange()[0]
    lines: list[str] = []
    w.doc.status.connect(lambda text, _ms: lines.append(text))
    type_into(panel.spin, "-1000000000")
    assert w.threshold == 8.0 and panel.spin.value() == pytest.approx(8.0)
    assert panel.plot.getViewBox().viewRange()[0] == axis
    assert any("refused" in x for x in lines)
    type_into(panel.spin, "1000000000")  # typed whole, never taken as its prefix "100"
    assert w.threshold == 8.0 and panel.plot.getViewBox().viewRange()[0] == axis
    type_into(panel.review_spin, "9")  # a review start above the threshold
    assert w.doc.review_from == 5.0 and any("at most 8" in x for x in lines)
    type_into(panel.spin, "4")  # a threshold below the band's start
    assert w.threshold == 8.0 and any("at least 5" in x for x in lines)
    type_into(panel.pixel_spin, "-3")
    assert panel.pixel_spin.value() >= 0 and not w.doc.pixel_threshold < 0
    type_into(panel.review_spin, "6.5")  # and a good value is taken
    assert w.doc.review_from == pytest.approx(6.5)
    type_into(panel.spin, "7.25")
    assert w.threshold == pytest.approx(7.25)
    assert panel.plot.getViewBox().viewRange()[0] == axis


def test_the_document_refuses_a_band_above_the_threshold(window: MainWindow, synthetic: Callable) -> None:
    w = window
    fill(w, synthetic)
    w.set_threshold(8.0)
    assert not w.doc.set_review_from(9.0) and math.isnan(w.doc.review_from)
    assert not w.doc.set_review_from(-1.0) and not w.doc.set_review_from(math.inf)
    assert w.doc.set_review_from(5.0)
    w.set_threshold(4.0)  # e.g. a best-F1 proposal below the band: refused, never reinterpreted
    assert w.threshold == 8.0 and w.doc.review_from == 5.0


@pytest.fixture
def banded_model(qt_model_path: Path, tmp_path: Path) -> Path:
    """The test model with a review band from half its threshold (written by hand)."""
    model = PatchCoreModel.load(qt_model_path, device="cpu")
    model.metadata["threshold"]["review_from"] = model.image_threshold * 0.5
    out = tmp_path / "banded.patchcore"
    model.save(out)
    return out


def test_a_model_with_a_band_runs_with_it_and_logs_changes(window: MainWindow, banded_model: Path,
                                                           qt_data: dict[str, Path], run_to_end: Callable) -> None:
    from patchcore_gui.core.run_file import RunFile

    w = window
    w.open_model(banded_model)
    thr, rf = w.model.image_threshold, w.model.review_from
    panel = w.threshold_panel
    assert panel.review_check.isChecked() and w.doc.review_from == rf
    assert panel.review_spin.value() == pytest.approx(rf, abs=10 ** -panel.review_spin.decimals())
    w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    st = w.store
    scores = st.scores
    c = st.counts(thr, rf)
    assert panel.review_label.text() == f"REVIEW {c['review']:,}" and not panel.review_label.isHidden()
    m = w.table_model
    for r in range(m.rowCount()):
        s = float(scores[m.image_at(r)])
        assert m.data(m.index(r, COL_VERDICT)) == (verdict(s, thr, rf) or "error")
    path = w.session.path
    with RunFile.open(path, readonly=True) as ro:
        assert ro.review_from == pytest.approx(rf)
    panel.band.line.setValue(panel.scale.to_view(rf * 0.8))
    panel.commit_pending()  # as releasing the line does
    panel.review_check.setChecked(False)  # off: logged at once
    with RunFile.open(path, readonly=True) as ro:
        log = [ch for ch in ro.threshold_log() if ch.kind == "review"]
        assert math.isnan(ro.review_from)
    assert [ch.new for ch in log][:1] == [pytest.approx(rf * 0.8)] and math.isnan(log[-1].new)
    # Operator review keys record the operator's verdict whatever the automatic one says.
    from patchcore_gui.qt.review import mark_current

    w.doc.set_review_from(rf)
    w.results.select_row(0)
    i = w.results.current_image()
    assert mark_current(w.doc, w.results, "NG", "ana")
    assert int(st.operator[i]) == 2
