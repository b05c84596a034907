"""The window's verdicts at the boundary: a score equal to the threshold is OK (NG only when >).

A run file with hand-picked scores (exact in float32; ``guard_helpers.BOUNDARY_ROWS``)
is opened in the window, so the table, the OK/NG counts, the filters, the image header
and the "false reject <=" button are all checked at thresholds that equal a score. The button sets the threshold to a
good image's own score: that image must then be OK, or the button rejects it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from guard_helpers import RUN_THRESHOLD, make_boundary_run

from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_VERDICT


@pytest.fixture
def opened(window: MainWindow, tmp_path: Path) -> MainWindow:
    assert window.open_run(make_boundary_run(tmp_path / "parts")), window.last_error
    assert window.threshold == RUN_THRESHOLD
    return window


def verdict_by_name(w: MainWindow) -> dict[str, str]:
    m, st = w.table_model, w.store
    assert st is not None
    return {Path(st.paths[m.image_at(r)]).name: m.data(m.index(r, COL_VERDICT)) for r in range(m.rowCount())}


def counts(w: MainWindow) -> tuple[str, str, str]:
    p = w.threshold_panel
    return p.ok_label.text(), p.ng_label.text(), p.err_label.text()


def test_equal_score_is_ok_in_table_counts_and_header(opened: MainWindow) -> None:
    w = opened
    assert verdict_by_name(w) == {"good_a.png": "OK", "good_b.png": "OK", "good_c.png": "OK",
                                  "bad_a.png": "NG", "bad_b.png": "NG", "broken.png": "error"}
    assert counts(w) == ("OK 3", "NG 2", "error 1")
    st = w.store
    assert st is not None
    assert w.results.select_image(st.paths.index(next(p for p in st.paths if p.endswith("good_c.png"))))
    assert w.image_pane.badge.text() == "OK"
    w.results.set_filter("ng")
    assert sorted(verdict_by_name(w)) == ["bad_a.png", "bad_b.png"]
    w.results.set_filter("fp")
    assert w.table_model.rowCount() == 0


def test_threshold_on_a_defect_score_passes_that_defect(opened: MainWindow) -> None:
    w = opened
    w.set_threshold(3.0)
    assert verdict_by_name(w)["bad_a.png"] == "OK"
    assert counts(w) == ("OK 4", "NG 1", "error 1")
    assert w.metrics_panel.confusion == {"tp": 1, "fp": 0, "tn": 3, "fn": 1}  # the unreadable image is not counted
    w.results.set_filter("fn")
    assert list(verdict_by_name(w)) == ["bad_a.png"]


def test_false_reject_button_keeps_that_good_image_ok(opened: MainWindow) -> None:
    w = opened
    w.set_threshold(0.25)  # everything NG
    assert counts(w) == ("OK 0", "NG 5", "error 1")
    w.metrics_panel.frr_spin.setValue(0.0)
    w.metrics_panel.frr_button.click()
    # The lowest threshold rejecting no good image is the highest good score itself, 2.0
    # (good_a, good_b and the unreadable image are the other good-labelled rows).
    assert w.threshold == 2.0
    assert verdict_by_name(w)["good_c.png"] == "OK"
    assert counts(w) == ("OK 3", "NG 2", "error 1")
    assert w.metrics_panel.confusion["fp"] == 0
    w.results.set_filter("fp")
    assert w.table_model.rowCount() == 0
