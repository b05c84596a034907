"""Issue 12, points 5-11: readable names and numbers, buttons that stay put, honest texts."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QHeaderView, QScrollArea, QToolButton

from patchcore_gui.app import parse_args
from patchcore_gui.core.coreset import CancelledError
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_FILE, COL_NORM, COL_SCORE
from patchcore_gui.qt.settings import AppSettings
from patchcore_gui.qt.startup import create_window
from patchcore_gui.qt.status import RunStatus


@pytest.fixture
def ready(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path]) -> MainWindow:
    assert window.open_model(qt_model_path) and window.open_folder(qt_data["mvtec"])
    return window


# ---------------------------------------------------------------- 5: names and numbers
def test_file_names_lose_their_folder_first_never_their_end(ready: MainWindow) -> None:
    d = ready.results.view.itemDelegate()
    fm = QFontMetrics(ready.results.view.font())
    a, b = "reviewed/defects/defect_140.png", "reviewed/defects/defect_240.png"
    width = fm.horizontalAdvance("…/defect_140.png") + 4
    ea, eb = d.elided_text(COL_FILE, a, width), d.elided_text(COL_FILE, b, width)
    assert ea.endswith("defect_140.png") and eb.endswith("defect_240.png") and ea != eb
    assert fm.horizontalAdvance(ea) <= width
    assert d.elided_text(COL_NORM, "195.140", 10) == "195.140"  # a number is never shortened


def test_number_columns_fit_their_numbers(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    run_to_end(w)
    w.set_threshold(1e-3)  # Norm. becomes five or six digits before the point
    hh = w.results.view.horizontalHeader()
    fm = QFontMetrics(w.results.view.font())
    for col in (COL_SCORE, COL_NORM):
        m = w.table_model
        widest = max(fm.horizontalAdvance(m.data(m.index(r, col)) or "") for r in range(m.rowCount()))
        assert hh.sectionSize(col) >= widest + 8, col
    hh.resizeSection(COL_NORM, 20)  # the user narrows it: it stays wide enough
    assert hh.sectionSize(COL_NORM) >= widest + 8


def test_file_column_and_splitter_resize_and_are_remembered(
    qtbot: object, settings_path: Path, qt_model_path: Path, qt_data: dict[str, Path]
) -> None:
    w = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    w.resize(1500, 900)
    w.show()
    hh = w.results.view.horizontalHeader()
    assert hh.sectionResizeMode(COL_FILE) == QHeaderView.ResizeMode.Interactive
    hh.resizeSection(COL_FILE, 333)
    w.splitter.setSizes([800, 300, 300])
    QTest.qWait(10)
    # The table gets the room the other panels can spare: all but the image pane's controls
    # (~400 px) and the right column (~400 px).
    assert w.splitter.sizes()[0] >= 680
    sizes = w.splitter.sizes()
    w.close()
    w2 = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w2)  # type: ignore[attr-defined]
    w2.show()
    QTest.qWait(20)
    assert w2.results.view.horizontalHeader().sectionSize(COL_FILE) == 333
    w2.close()
    assert sizes[0] >= 680


def test_splitter_sizes_are_remembered(qtbot: object, settings_path: Path) -> None:
    w = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    w.resize(1500, 900)
    w.show()
    w.splitter.setSizes([800, 300, 300])
    QTest.qWait(10)
    sizes = w.splitter.sizes()
    w.close()
    w2 = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w2)  # type: ignore[attr-defined]
    w2.show()
    QTest.qWait(20)
    assert w2.splitter.sizes()[0] == sizes[0]
    w2.close()


# ---------------------------------------------------------------- 6: buttons stay put
def test_run_stays_at_one_x_whatever_the_folder_name(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], tmp_path: Path
) -> None:
    w = window
    w.show()
    short, long = tmp_path / "a", tmp_path / ("an_electroluminescence_solar_cell_lot_" * 3 + "test")
    for folder in (short, long):
        folder.mkdir()
        shutil.copy(qt_data["train"] / "good_00.png", folder / "x.png")
    run = w.toolbar.widgetForAction(w.toolbar.run_action)
    xs = []
    for folder in (short, long):
        assert w.open_folder(folder)
        QTest.qWait(20)
        xs.append(run.mapTo(w, QPoint(0, 0)).x())
    assert xs[0] == xs[1]
    assert run.isVisible() and run.width() > 0


def test_dialog_buttons_do_not_move_when_progress_shows(window: MainWindow, qtbot: object) -> None:
    dlg = window.dialogs.show_train()
    qtbot.waitExposed(dlg)  # type: ignore[attr-defined]
    before = {b: b.mapTo(dlg, b.rect().center()) for b in (dlg.cancel_button, dlg.start_button, dlg.close_button)}
    started = threading.Event()

    def job(progress: Callable, cancel: threading.Event) -> None:
        progress("calibration", 3, 1000)
        started.set()
        cancel.wait(30)
        raise CancelledError("stopped")

    cancelled: list[bool] = []
    dlg.task_cancelled.connect(lambda: cancelled.append(True))
    assert dlg.run_task(job, "hold", "Training on 1,234 images… " * 4)
    qtbot.waitUntil(lambda: started.is_set() and dlg.stage_label.text() != "", timeout=10_000)  # type: ignore[attr-defined]
    QTest.qWait(20)
    for button, centre in before.items():
        assert button.mapTo(dlg, button.rect().center()) == centre, button.text()
    # A real click where Cancel was before the progress appeared cancels the job.
    target = dlg.childAt(before[dlg.cancel_button])
    assert target is dlg.cancel_button
    QTest.mouseClick(target, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(cancelled), timeout=10_000)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- 7: skipped training images
def test_training_names_the_images_it_skipped(window: MainWindow, qt_data: dict[str, Path], tmp_path: Path,
                                              qtbot: object) -> None:
    folder = tmp_path / "good"
    shutil.copytree(qt_data["train"], folder)
    (folder / "zz_broken.png").write_bytes(b"not an image")
    dlg = window.dialogs.show_train()
    dlg.set_folder(folder)
    dlg.set_backbone("efficientnet_lite0")
    dlg.crop_spin.setValue(64)
    dlg.resize_spin.setValue(72)
    dlg.coreset_spin.setValue(50.0)
    dlg.false_reject_spin.setValue(5.0)
    dlg.output_field.set_text(str(tmp_path / "t.patchcore"))
    window.confirm = lambda _t, _q: False
    with qtbot.waitSignal(dlg.task_succeeded, timeout=180_000):  # type: ignore[attr-defined]
        assert dlg.start()
    assert "1 of 13 images skipped" in dlg.last_message
    assert dlg.skipped_list.isVisibleTo(dlg) and dlg.skipped_list.count() == 1
    assert "zz_broken.png" in dlg.skipped_list.item(0).text()


# ---------------------------------------------------------------- 8: resume
def test_rate_after_a_resume_counts_this_session_only(qtbot: object) -> None:
    status = RunStatus()
    qtbot.addWidget(status)  # type: ignore[attr-defined]
    status.start(100, "cpu", already=60)
    status.progress(80, 100, 2.0)
    assert status.rate_label.text() == "10.0 img/s"
    status.finish(100, 4.0, "cpu")
    assert status.rate_label.text() == "10.0 img/s"


def test_precision_choice_stays_auto_after_a_resume(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object
) -> None:
    w = window
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(4)
    w.toolbar.set_precision("auto")
    w.controller.batch_ready.connect(lambda *_: w.cancel_run())
    with qtbot.waitSignal(w.run_finished, timeout=60_000):  # type: ignore[attr-defined]
        w.start_run()
    w.controller.batch_ready.disconnect()
    w.controller.batch_ready.connect(w.view.on_batch)
    with qtbot.waitSignal(w.run_finished, timeout=120_000):  # type: ignore[attr-defined]
        assert w.resume_run(), w.last_error
    assert w.store.count == 48
    assert w.toolbar.precision == "auto"


# ---------------------------------------------------------------- 9: stale texts
def test_train_dialog_forgets_no_images_found_when_the_folder_changes(
    window: MainWindow, qt_data: dict[str, Path], tmp_path: Path
) -> None:
    dlg = window.dialogs.show_train()
    empty = tmp_path / "empty"
    empty.mkdir()
    dlg.set_folder(empty)
    assert not dlg.start() and "No images found" in dlg.status_label.text()
    dlg.set_folder(qt_data["train"])
    assert "No images found" not in dlg.status_label.text()


def test_roc_has_no_operating_point_without_data(ready: MainWindow, run_to_end: Callable, qt_data: dict) -> None:
    mp = ready.metrics_panel
    assert len(mp.op_point.data) == 0
    run_to_end(ready)
    assert len(mp.op_point.data) == 1
    assert ready.open_folder(qt_data["mvtec"])  # a new, unscored folder
    assert len(mp.op_point.data) == 0
    assert mp.summary_label.text().startswith("AUROC —")


def test_status_bar_has_no_empty_device_or_last_runs_rate(ready: MainWindow, run_to_end: Callable,
                                                           qt_data: dict) -> None:
    w = ready
    w.run_status.finish(0, 0.0, "")
    assert w.run_status.device_label.text() == ""
    run_to_end(w)
    assert "img/s" in w.run_status.rate_label.text() and "device: " in w.run_status.device_label.text()
    assert w.open_folder(qt_data["many"])
    assert w.run_status.rate_label.text() == "" and w.run_status.device_label.text() == ""


def test_import_dialogs_trust_warning_is_whole_at_its_default_size(window: MainWindow, qtbot: object) -> None:
    dlg = window.dialogs.show_import()
    qtbot.waitExposed(dlg)  # type: ignore[attr-defined]
    label = dlg.warning_label
    assert label.height() >= label.heightForWidth(label.width())
    assert label.parentWidget().geometry().bottom() <= dlg.height()


# ---------------------------------------------------------------- 10: the smallest window
def test_smallest_window_overlaps_nothing_and_the_toolbar_overflows(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    w.show()
    run_to_end(w)
    w.resize(200, 200)
    QTest.qWait(50)
    size = w.size()
    assert size.width() >= 1000 and size.height() >= 600, size
    assert w.minimumWidth() <= 1200 and w.minimumHeight() <= 700
    tb = w.toolbar
    ext = tb.findChild(QToolButton, "qt_toolbar_ext_button")
    hidden = [a.text() for a in tb.actions() if a.isVisible() and (wd := tb.widgetForAction(a)) is not None
              and (not wd.isVisible() or wd.geometry().right() > tb.width())]
    assert not hidden or (ext is not None and ext.isVisible()), hidden


def test_minimum_size_follows_the_panels_after_a_run(window: MainWindow, qt_model_path: Path,
                                                     qt_data: dict[str, Path], run_to_end: Callable) -> None:
    """The panels' needs grow during a run (the ground-truth tabs appear once results exist):
    the window's minimum must follow, or the smallest window lets the slider run over the
    histogram. The window is on screen before the folder opens, as an operator has it."""
    w = window
    w.resize(1500, 900)
    w.show()
    QTest.qWait(50)
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    QTest.qWait(50)
    assert w.minimumHeight() >= w.minimumSizeHint().height()


def test_smallest_window_slider_stays_below_the_histogram(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    w.show()
    run_to_end(w)
    w.resize(200, 200)
    QTest.qWait(50)
    tp = w.threshold_panel
    plot_bottom = tp.plot.mapTo(w, QPoint(0, tp.plot.height())).y()
    assert tp.slider.mapTo(w, QPoint(0, 0)).y() >= plot_bottom


def test_smallest_window_with_ground_truth_fits_a_1366_by_768_screen(ready: MainWindow, run_to_end: Callable) -> None:
    """Model card, threshold panel and the ground-truth tabs need ~840 px: the right column
    scrolls instead of setting the window's minimum, and no panel is squeezed below its own."""
    w = ready
    w.show()
    run_to_end(w)
    assert w.metrics_panel.isVisible()
    w.resize(200, 200)
    QTest.qWait(50)
    # 768 px less a title bar and a task bar; 1280 is the narrowest common laptop screen.
    assert w.height() <= 700 and w.width() <= 1280, w.size()
    tp = w.threshold_panel
    assert tp.height() >= tp.minimumSizeHint().height()
    assert w.metrics_panel.height() >= w.metrics_panel.minimumSizeHint().height()
    column = w.findChild(QScrollArea, "rightColumn")
    assert column is not None and column.verticalScrollBar().maximum() > 0  # the rest is a scroll away


def test_overlay_controls_are_never_cut_at_the_smallest_window(ready: MainWindow, run_to_end: Callable) -> None:
    """At the smallest width the strip read "Heal", "Regi", "Trutl": the colour scale now takes
    a second row when the pane is narrow, and each control keeps its full width."""
    w = ready
    w.show()
    run_to_end(w)
    w.results.select_image(0)
    for size in ((200, 200), (1500, 900)):
        w.resize(*size)
        QTest.qWait(50)
        pane = w.image_pane
        for control in (pane.heat_check, pane.cmap_combo, pane.region_check, pane.gt_check, pane.fit_button):
            assert control.width() >= control.sizeHint().width(), (size, control.text() if hasattr(control, "text") else control)
        assert pane.colorbar.width() >= pane.colorbar.minimumWidth()


# ---------------------------------------------------------------- 11: wording and start-up
def test_report_from_the_window_names_the_windows_threshold(ready: MainWindow, run_to_end: Callable,
                                                            tmp_path: Path, qtbot: object) -> None:
    run_to_end(ready)
    ready.set_threshold(ready.threshold * 1.5, log=True)
    dlg = ready.dialogs.show_report()
    dlg.set_path(tmp_path / "r.html")
    with qtbot.waitSignal(dlg.task_succeeded, timeout=60_000):  # type: ignore[attr-defined]
        assert dlg.start()
    html = (tmp_path / "r.html").read_text()
    assert "--threshold" not in html


def test_run_files_carry_the_models_name(ready: MainWindow, run_to_end: Callable) -> None:
    run_to_end(ready)
    assert ready.session.path.name.endswith("-mvtec-m.pcrun")


def test_a_start_reopens_the_last_run_and_the_demo_only_when_it_is_gone(
    ready: MainWindow, run_to_end: Callable, settings_path: Path, qtbot: object, tmp_path: Path
) -> None:
    run_to_end(ready)
    run = ready.session.path
    ready.close()
    w = create_window(parse_args(["--settings", str(settings_path)]), demo_target="nowhere:nothing")
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    assert w.demo_loader is None and w.session.path == run and w.store.count == 10
    w.close()
    run.unlink()
    w3 = create_window(parse_args(["--settings", str(settings_path)]), demo_target="nowhere:nothing")
    qtbot.addWidget(w3)  # type: ignore[attr-defined]
    assert w3.demo_loader is None and w3.model is not None  # the last model, then
    w3.close()
