"""Issue 12, points 1-4: a new operator's traps around runs, folders, filters and lost work.

Point 1 is driven with real mouse events at the button's place in the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.train_dialog import TrainResult


def click_window_at(window: MainWindow, point: QPoint) -> None:
    """A real left click on whatever widget is at ``point`` (window coordinates)."""
    target = window.childAt(point)
    assert target is not None
    QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target.mapFrom(window, point))


def button_centre(window: MainWindow, action: object) -> QPoint:
    button = window.toolbar.widgetForAction(action)
    return button.mapTo(window, button.rect().center())


class Answers:
    """An injected confirmation: records the questions, answers ``reply``."""

    def __init__(self, reply: bool) -> None:
        self.reply = reply
        self.asked: list[str] = []

    def __call__(self, title: str, text: str) -> bool:
        self.asked.append(text)
        return self.reply


@pytest.fixture
def slow(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path]) -> MainWindow:
    """48 images in batches of 1: a run that lasts long enough to click into."""
    window.show()
    assert window.open_model(qt_model_path) and window.open_folder(qt_data["many"])
    window.toolbar.batch_spin.setValue(1)
    return window


def test_double_click_on_run_starts_one_run_and_cancels_nothing(slow: MainWindow, qtbot: object) -> None:
    w = slow
    w.confirm = Answers(True)
    run_at = button_centre(w, w.toolbar.run_action)
    finished: list[bool] = []
    w.run_finished.connect(finished.append)
    click_window_at(w, run_at)  # the first click of a double click...
    assert w.is_running()
    qtbot.wait(120)  # ...and the second, 120 ms later, at the same place
    click_window_at(w, run_at)
    QTest.mouseDClick(w.toolbar.widgetForAction(w.toolbar.run_action), Qt.MouseButton.LeftButton)
    assert w.is_running() and not finished
    # Cancel has a place of its own, beside Run, and the two never swap.
    cancel_at = button_centre(w, w.toolbar.cancel_action)
    assert cancel_at != run_at and button_centre(w, w.toolbar.run_action) == run_at
    assert not w.toolbar.run_action.isEnabled() and w.toolbar.cancel_action.isEnabled()
    qtbot.waitUntil(lambda: bool(finished), timeout=120_000)  # type: ignore[attr-defined]
    assert finished == [False]
    assert w.store is not None and w.store.count == 48
    assert not w.toolbar.cancel_action.isEnabled() and w.toolbar.run_action.isEnabled()


def test_cancel_after_a_while_asks_first(slow: MainWindow, qtbot: object) -> None:
    w = slow
    w.confirm = Answers(False)
    finished: list[bool] = []
    w.run_finished.connect(finished.append)
    assert w.start_run()
    qtbot.waitUntil(lambda: w.session.path is not None, timeout=10_000)  # type: ignore[attr-defined]
    cancel_at = button_centre(w, w.toolbar.cancel_action)
    w.runs.started_at -= 10  # the run has gone on for 10 s
    click_window_at(w, cancel_at)
    assert len(w.confirm.asked) == 1 and "resume" in w.confirm.asked[0].lower()
    assert w.is_running()  # "no": the run goes on
    w.confirm.reply = True
    click_window_at(w, cancel_at)
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)  # type: ignore[attr-defined]
    assert finished == [True]


def test_a_new_folder_starts_from_the_models_threshold(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["mvtec"])
    model_t = w.model.image_threshold
    run_to_end(w)
    run_path = w.session.path
    w.set_threshold(700.0, log=True)
    w.doc.new_results()  # the run file closes; reopen it
    assert w.open_run(run_path)  # reopened: 700, from the run file
    assert w.threshold == 700.0 and "run file" in w.threshold_origin
    assert w.open_folder(qt_data["many"])
    assert w.threshold == pytest.approx(model_t)
    assert "run file" not in w.threshold_panel.origin_label.text()
    assert "model" in w.threshold_panel.origin_label.text()
    # Carrying a threshold over is an explicit, visible choice.
    w.set_threshold(700.0)
    check = w.threshold_panel.keep_check
    assert check.isVisibleTo(w) and check.text() == "Keep this threshold for the next folder"
    check.setChecked(True)
    assert w.open_folder(qt_data["mvtec"])
    assert w.threshold == 700.0
    assert "run file" not in w.threshold_origin and "kept" in w.threshold_origin


def test_a_new_folder_resets_filters_and_the_count_says_what_is_shown(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    w.results.set_filter("errors")
    w.results.set_review_filter("reviewed")
    w.results.search.setText("zzz")
    assert w.open_folder(qt_data["many"])
    assert w.table_model.filter_kind == "all" and w.table_model.review_kind == "any"
    assert w.results.search.text() == ""
    w.results.set_filter("ng")
    run_to_end(w)
    st = w.store
    shown = w.table_model.rowCount()
    assert 0 < shown < st.count == 48
    assert w.results.count_label.text() == f"{shown} of 48 shown (filter: NG)"
    w.results.set_review_filter("reviewed")  # nothing reviewed: an empty table says why
    assert w.results.count_label.text() == "0 of 48 shown (filter: NG, Reviewed)"
    assert "Press Run" not in w.image_pane.placeholder.text()
    assert "filter" in w.image_pane.placeholder.text()


def test_count_is_kept_current_during_a_run(slow: MainWindow, qtbot: object) -> None:
    w = slow
    w.results.set_filter("ng")
    seen: list[str] = []
    w.controller.progressed.connect(lambda *a: seen.append(w.results.count_label.text()))
    with qtbot.waitSignal(w.run_finished, timeout=120_000):  # type: ignore[attr-defined]
        w.start_run()
    assert w.results.count_label.text().startswith(f"{w.table_model.rowCount()} of 48 shown")
    mid = [t for t in seen if "of 48" not in t and t]
    assert mid, seen  # during the run the total grew with the scored images


def test_opening_a_folder_during_a_run_asks_and_says_it_can_be_resumed(
    slow: MainWindow, qt_data: dict[str, Path], qtbot: object
) -> None:
    w = slow
    w.confirm = Answers(False)
    with qtbot.waitSignal(w.controller.batch_ready, timeout=60_000):  # type: ignore[attr-defined]
        w.start_run()
    qtbot.waitUntil(lambda: w.session.path is not None, timeout=10_000)  # type: ignore[attr-defined]
    assert not w.open_folder(qt_data["mvtec"])
    assert w.is_running() and Path(w.image_set.root) == qt_data["many"]
    assert "resume" in w.confirm.asked[0].lower() and w.session.path.name in w.confirm.asked[0]
    w.confirm.reply = True
    assert w.open_folder(qt_data["mvtec"])
    assert not w.is_running()
    assert "Running" not in w.statusBar().currentMessage()


def test_closing_during_a_run_asks_first(slow: MainWindow, qtbot: object) -> None:
    w = slow
    w.confirm = Answers(False)
    with qtbot.waitSignal(w.controller.batch_ready, timeout=60_000):  # type: ignore[attr-defined]
        w.start_run()
    assert not w.close()
    assert w.isVisible() and w.is_running() and len(w.confirm.asked) == 1
    w.confirm.reply = True
    assert w.close()
    assert w.controller.live_threads() == 0


def test_a_finished_training_asks_before_replacing_results(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    shown = w.store
    w.confirm = Answers(False)
    dlg = w.dialogs.show_train()
    dlg.task_succeeded.emit(TrainResult(str(qt_model_path), 12))
    assert len(w.confirm.asked) == 1 and w.store is shown and w.store.count == 10
    assert "not opened" in w.statusBar().currentMessage()
    w.confirm.reply = True
    dlg.task_succeeded.emit(TrainResult(str(qt_model_path), 12))
    assert w.store is not shown
