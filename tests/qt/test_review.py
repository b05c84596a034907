"""Keyboard-first operator review (O / N) and the threshold log, both kept in the run file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from patchcore_gui.core.run_file import RunFile
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_OPERATOR


@pytest.fixture
def reviewed(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object,
             run_to_end: Callable) -> MainWindow:
    w = window
    w.settings.operator_name = "ana"
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    w.activateWindow()
    w.open_model(qt_model_path)
    w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    return w


def verdicts(path: Path) -> dict[int, tuple[str, str, str]]:
    with RunFile.open(path, readonly=True) as run:
        return run.operator_verdicts()


def test_o_and_n_keys_store_verdicts_advance_and_filter(reviewed: MainWindow) -> None:
    w = reviewed
    view = w.results.view
    view.setFocus()
    w.results.select_row(0)
    first, second = w.table_model.image_at(0), w.table_model.image_at(1)
    QTest.keyClick(view, Qt.Key.Key_O)
    assert w.results.current_image() == second  # moved on
    QTest.keyClick(view, Qt.Key.Key_N)
    assert w.results.current_image() == w.table_model.image_at(2)
    path = w.session.path
    assert path is not None
    got = verdicts(path)
    assert {i: v[0] for i, v in got.items()} == {first: "OK", second: "NG"}
    assert got[first][2] == "ana" and got[first][1]  # who and when
    m = w.table_model
    assert m.data(m.index(m.row_of(first), COL_OPERATOR)) == "✓ OK"
    assert m.data(m.index(m.row_of(second), COL_OPERATOR)) == "✓ NG"
    # The same key again clears the verdict and stays on the image.
    w.results.select_image(second)
    QTest.keyClick(view, Qt.Key.Key_N)
    assert w.results.current_image() == second
    assert {i: v[0] for i, v in verdicts(path).items()} == {first: "OK"}
    QTest.keyClick(view, Qt.Key.Key_N)
    # Review filters.
    w.results.set_review_filter("reviewed")
    assert sorted(m.rows.tolist()) == sorted([first, second])
    w.results.set_review_filter("op_ng")
    assert m.rows.tolist() == [second]
    w.results.set_review_filter("unreviewed")
    assert m.rowCount() == 8 and first not in m.rows
    # Reviewing in the "unreviewed" list: the marked image leaves, the next one is current.
    w.results.select_row(0)
    nxt = m.image_at(1)
    QTest.keyClick(view, Qt.Key.Key_O)
    assert m.rowCount() == 7 and w.results.current_image() == nxt
    assert len(verdicts(path)) == 3
    # Typing O / N in the search box is text, not a verdict.
    w.results.search.setFocus()
    QTest.keyClicks(w.results.search, "on")
    assert w.results.search.text() == "on" and len(verdicts(path)) == 3


def test_threshold_changes_are_logged_on_release_not_per_tick(reviewed: MainWindow, qtbot: object) -> None:
    w = reviewed
    path = w.session.path
    assert path is not None
    model_thr = w.threshold
    slider = w.threshold_panel.slider

    def log() -> list:
        with RunFile.open(path, readonly=True) as run:
            return run.threshold_log()

    slider.setSliderDown(True)
    for k in (200, 300, 400):
        slider.setValue(k)
    moved = w.threshold
    assert moved != model_thr and log() == []  # no entry per tick while dragging
    slider.setSliderDown(False)  # release
    entries = log()
    assert len(entries) == 1
    assert entries[0].old == pytest.approx(model_thr) and entries[0].new == pytest.approx(moved)
    assert entries[0].kind == "image" and entries[0].note == "set by hand"
    # The number box: logged after the user stops stepping.
    w.threshold_panel.spin.setValue(moved * 2)
    w.threshold_panel.spin.setValue(moved * 3)
    qtbot.waitUntil(lambda: len(log()) == 2, timeout=5000)  # type: ignore[attr-defined]
    assert log()[1].old == pytest.approx(moved) and log()[1].new == pytest.approx(moved * 3, rel=1e-3)
    # A proposal from the metrics panel is one decision: logged at once.
    w.metrics_panel.best_f1_button.click()
    entries = log()
    assert len(entries) == 3 and "best F1" in entries[2].note
    w.threshold_panel.pixel_spin.setValue(w.pixel_threshold * 2)
    qtbot.waitUntil(lambda: len(log()) == 4, timeout=5000)  # type: ignore[attr-defined]
    assert log()[3].kind == "pixel"
    with RunFile.open(path, readonly=True) as run:
        assert run.image_threshold == pytest.approx(w.threshold)
    assert w.threshold_panel.log_button.text() == "Log (4)"
    dlg = w.dialogs.show_threshold_log()
    assert dlg.table.rowCount() == 4
    assert "best F1" in dlg.table.item(2, 4).text()
    assert np.isclose(float(dlg.table.item(0, 3).text()), moved, rtol=1e-5)
    # A change still waiting for its pause is not lost when the window closes.
    w.threshold_panel.spin.setValue(moved * 4)
    w.close()
    assert len(log()) == 5 and log()[4].new == pytest.approx(moved * 4, rel=1e-3)
