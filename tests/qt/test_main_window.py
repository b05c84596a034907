"""The main window driven through its scripting surface with a real tiny model."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDropEvent
from PySide6.QtTest import QTest

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.result_table import ERROR, NG
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_VERDICT
from patchcore_gui.qt.settings import AppSettings

DEFECT_CENTRE = (67, 67)  # (y, x) inside the planted square of the test images
FAR_CORNER = (12, 12)  # inside the model's crop, far from the defect


def scale_position(rgb: np.ndarray, lut: np.ndarray) -> float:
    """Where a rendered colour sits on the colour scale (0 cold .. 1 hot), by nearest LUT entry."""
    d = ((lut.astype(int) - rgb[:3].astype(int)) ** 2).sum(axis=1)
    return float(np.argmin(d)) / (len(lut) - 1)


def verdict_words(window: MainWindow) -> list[str]:
    m = window.table_model
    return [m.data(m.index(r, COL_VERDICT)) for r in range(m.rowCount())]


@pytest.fixture
def ready(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path]) -> MainWindow:
    assert window.open_model(qt_model_path), window.last_error
    assert window.open_folder(qt_data["mvtec"]), window.last_error
    return window


def test_full_run_scores_every_image_with_error_row(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    assert "10 images" in w.toolbar.folder_label.text()  # count shown before the run
    assert run_to_end(w) is False
    st = w.store
    assert st is not None and st.count == 10
    assert w.table_model.rowCount() == 10
    words = verdict_words(w)
    assert words.count("error") == 1
    broken = st.paths.index(next(p for p in st.paths if p.endswith("broken.png")))
    assert "not a recognised image format" in st.errors[broken]
    # The planted defects are NG at the model's threshold; the good images score far
    # below them (the tiny model's 3-image calibration may still reject one good image).
    code = st.verdicts(w.threshold)
    assert (code[st.labels == 1] == NG).all()
    assert np.nanmax(st.scores[st.labels == 0]) * 5 < st.scores[st.labels == 1].min()
    assert code[broken] == ERROR
    assert words.count("NG") == int(np.sum(st.scores > w.threshold))
    assert w.metrics_panel.auroc == pytest.approx(1.0)
    assert w.results.current_image() >= 0  # the first row is shown without a click
    assert w.controller.live_threads() == 0 or w.controller.is_running() is False


def test_threshold_move_updates_counts_verdicts_and_signal(ready: MainWindow, qtbot: object, run_to_end: Callable) -> None:
    w = ready
    run_to_end(w)
    st = w.store
    assert st is not None
    good_max = float(np.nanmax(st.scores[st.labels == 0]))
    w.set_threshold(2 * good_max)
    assert w.threshold_panel.ng_label.text() == "NG 4"
    assert w.threshold_panel.ok_label.text() == "OK 5"
    assert verdict_words(w).count("OK") == 5
    with qtbot.waitSignal(w.threshold_changed) as blocker:  # type: ignore[attr-defined]
        w.set_threshold(good_max - 1e-3)
    assert blocker.args == [pytest.approx(good_max - 1e-3)]
    assert w.threshold_panel.ng_label.text() == "NG 5"
    assert w.metrics_panel.confusion == {"tp": 4, "fp": 1, "tn": 4, "fn": 0}
    w.results.set_filter("fp")
    assert w.table_model.rowCount() == 1
    assert verdict_words(w) == ["NG"]
    # Dragging the histogram line is the same path as the number box.
    w.threshold_panel.line.setValue(float(w.threshold_panel.scale.to_view(float(np.nanmax(st.scores)) + 1)))
    assert w.threshold_panel.ng_label.text() == "NG 0"
    assert w.threshold_origin == "set by hand"
    assert w.table_model.rowCount() == 0  # no false positives left


def test_best_f1_and_false_reject_buttons(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    run_to_end(w)
    w.set_threshold(1.0)  # everything NG
    w.metrics_panel.best_f1_button.click()
    assert w.metrics_panel.prf[2] == pytest.approx(1.0)
    assert "best F1" in w.threshold_origin
    w.metrics_panel.frr_spin.setValue(0.0)
    w.metrics_panel.frr_button.click()
    st = w.store
    assert st is not None
    assert w.threshold == pytest.approx(float(np.nanmax(st.scores[st.labels == 0])))
    assert w.metrics_panel.confusion["fp"] == 0


def test_overlay_is_hot_on_the_defect_and_cold_elsewhere(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    run_to_end(w)
    st = w.store
    assert st is not None
    bad = next(i for i, p in enumerate(st.paths) if "square" in p)
    assert w.results.select_image(bad)
    pane = w.image_pane
    amap, rgba = pane.current_map, pane.heat_rgba
    assert amap is not None and rgba is not None
    assert amap.shape == (96, 96) == rgba.shape[:2]  # the image's own pixel grid
    y, x = DEFECT_CENTRE
    fy, fx = FAR_CORNER
    assert amap[y, x] > w.pixel_threshold > amap[fy, fx]
    assert amap[y, x] > 5 * amap[fy, fx]
    assert pane.region_mask is not None and pane.region_mask[y, x] and not pane.region_mask[fy, fx]
    assert pane.gt_mask is not None and pane.gt_mask[y, x] and not pane.gt_mask[fy, fx]
    # The rendered overlay (levels 0 .. 2 x pixel threshold): saturated hot on the
    # defect, below the threshold's colour (the scale's middle) in the far corner.
    lut = pane._lut
    assert scale_position(rgba[y, x], lut) > 0.95
    assert scale_position(rgba[fy, fx], lut) < 0.5
    assert rgba[y, x, :3].astype(int).sum() > 550  # inferno's hot end is pale yellow
    assert rgba[0, 0, 3] == 0  # cropped off by the model: transparent, not coloured
    # The scale is absolute, not per image: a good image's map is cold everywhere.
    good = int(np.nanargmin(np.where(st.labels == 0, st.scores, np.nan)))
    assert w.results.select_image(good)
    inside = pane.heat_rgba[..., 3] > 0
    positions = [scale_position(px, lut) for px in pane.heat_rgba[inside][::37]]
    assert max(positions) < 0.5
    assert not pane.region_mask.any()


def test_pixel_threshold_moves_the_region(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    run_to_end(w)
    st = w.store
    assert st is not None
    w.results.select_image(next(i for i, p in enumerate(st.paths) if "square" in p))
    y, x = DEFECT_CENTRE
    before = int(w.image_pane.region_mask.sum())
    w.threshold_panel.pixel_spin.setValue(w.pixel_threshold * 3)
    after = int(w.image_pane.region_mask.sum())
    assert 0 < after < before
    assert w.image_pane.region_mask[y, x]
    assert w.image_pane.levels == (0.0, pytest.approx(2 * w.pixel_threshold))


def test_keys_step_rows_and_toggle_overlay(ready: MainWindow, qtbot: object, run_to_end: Callable) -> None:
    w = ready
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    run_to_end(w)
    w.results.select_row(0)
    first = w.results.current_image()
    w.image_pane.setFocus()
    QTest.keyClick(w.image_pane, Qt.Key.Key_Down)
    assert w.results.current_image() == w.table_model.image_at(1) != first
    QTest.keyClick(w.image_pane, Qt.Key.Key_Up)
    assert w.results.current_image() == first
    # Zoomed in on a spot, stepping to the next image (same size) keeps the view.
    w.image_pane.viewbox.setRange(xRange=(40, 60), yRange=(40, 60), padding=0)
    zoomed = w.image_pane.viewbox.viewRange()
    QTest.keyClick(w.image_pane, Qt.Key.Key_Down)
    assert w.image_pane.viewbox.viewRange() == zoomed
    assert w.image_pane.heat_item.isVisible()
    QTest.keyClick(w.image_pane, Qt.Key.Key_Space)
    assert not w.image_pane.heat_item.isVisible()
    QTest.keyClick(w.image_pane, Qt.Key.Key_Space)
    assert w.image_pane.heat_item.isVisible()


def test_cancel_mid_run_keeps_scored_rows(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object) -> None:
    w = window
    w.open_model(qt_model_path)
    w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(2)
    w.controller.batch_ready.connect(lambda *_: w.cancel_run())
    with qtbot.waitSignal(w.run_finished, timeout=60_000) as blocker:  # type: ignore[attr-defined]
        w.start_run()
    assert blocker.args == [True]
    st = w.store
    assert st is not None
    assert 2 <= st.count < 48
    assert w.table_model.rowCount() == st.count
    assert np.isfinite(st.scores[st.order[: st.count]]).all()
    assert "Cancelled" in w.statusBar().currentMessage()
    assert w.start_run()  # still usable afterwards
    qtbot.waitUntil(lambda: not w.is_running(), timeout=60_000)  # type: ignore[attr-defined]


def test_close_during_run_stops_the_thread(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object, qtlog: object) -> None:
    w = window
    w.open_model(qt_model_path)
    w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(2)
    with qtbot.waitSignal(w.controller.batch_ready, timeout=60_000):  # type: ignore[attr-defined]
        w.start_run()
    handles = list(w.controller._handles.values())
    assert handles and handles[0].is_running()
    w.confirm = lambda _title, _text: True  # "stop the run?" (tests/qt/test_operator_runs.py asks "no" too)
    w.close()
    assert w.controller.live_threads() == 0
    assert all(h.thread.isFinished() for h in handles)
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)  # type: ignore[attr-defined]


def test_worker_exception_is_shown_and_app_stays_usable(ready: MainWindow, monkeypatch: pytest.MonkeyPatch, run_to_end: Callable) -> None:
    from patchcore_gui.core import engine

    real = engine.iter_predict

    def broken(*args: object, **kwargs: object):
        gen = real(*args, **kwargs)
        yield next(gen)
        raise RuntimeError("backbone exploded\nsecond line")

    monkeypatch.setattr(engine, "iter_predict", broken)
    ready.toolbar.batch_spin.setValue(4)
    run_to_end(ready)
    assert ready.last_error == "The run stopped: RuntimeError: backbone exploded"
    assert ready.store is not None and ready.store.count == 4  # the first batch is kept
    monkeypatch.setattr(engine, "iter_predict", real)
    assert run_to_end(ready) is False
    assert ready.store.count == 10


def test_stale_run_results_are_dropped(window: MainWindow, qtbot: object) -> None:
    c = window.controller
    got: list[object] = []
    c.batch_ready.connect(lambda *a: got.append(a))
    c._current = 5
    c._on_batch(4, np.array([0]), np.array([1.0]), np.zeros((1, 2, 2)), [""])
    assert got == []
    c._on_batch(5, np.array([0]), np.array([1.0]), np.zeros((1, 2, 2)), [""])
    assert len(got) == 1


def test_model_card_describes_the_model(window: MainWindow, qt_model_path: Path) -> None:
    window.open_model(qt_model_path)
    v = {k: label.text() for k, label in window.card.values.items()}
    assert window.card.title.text() == "m.patchcore"
    assert v["backbone"].startswith("efficientnet_lite0")
    assert v["input"] == "resize 72 → crop 64 px"
    assert v["bank"].startswith(f"{window.model.bank_size:,} × 152")
    assert v["training"] == "12 good images"
    assert f"image {window.model.image_threshold:.4g}" in v["threshold"]
    assert "1 % false rejects estimated from 12 out-of-bank scores" in window.card.values["rule"].toolTip()
    assert v["created"][:4].isdigit()


def test_unusable_model_gets_one_sentence(window: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "junk.patchcore"
    bad.write_bytes(b"\x00" * 64)
    assert not window.open_model(bad)
    assert window.last_error.startswith("junk.patchcore: ")
    assert "\n" not in window.last_error
    assert window.model is None
    assert not window.open_folder(tmp_path / "missing")
    assert "folder not found" in window.last_error
    assert not window.start_run()
    assert window.last_error == "Open a model and an image folder first."


def test_save_threshold_writes_a_new_file(ready: MainWindow, run_to_end: Callable, tmp_path: Path, qt_model_path: Path) -> None:
    w = ready
    run_to_end(w)
    asked: list[str] = []
    target = tmp_path / "tuned.patchcore"
    w._ask_save_path = lambda default: (asked.append(default), str(target))[1]  # type: ignore[method-assign]
    w.metrics_panel.best_f1_button.click()
    value = w.threshold
    original = qt_model_path.read_bytes()
    assert w.save_threshold()
    assert asked == [str(qt_model_path.with_name("m-thr.patchcore"))]
    assert qt_model_path.read_bytes() == original
    saved = PatchCoreModel.load(target, device="cpu")
    assert saved.image_threshold == value
    assert saved.threshold_info["source"] == "manual"
    assert "best F1" in saved.threshold_info["rule"] and "mvtec" in saved.threshold_info["rule"]
    assert "tuned.patchcore" in w.card.title.text()
    # The open model file itself is never the target.
    w._ask_save_path = lambda default: str(target)  # type: ignore[method-assign]
    assert not w.save_threshold()
    assert "never overwritten" in w.last_error


def test_drop_opens_folder_and_model(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(qt_data["mvtec"])), QUrl.fromLocalFile(str(qt_model_path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.model is not None and window.image_set is not None
    assert window.toolbar.run_action.isEnabled()


def test_settings_are_remembered(qtbot: object, settings_path: Path, qt_model_path: Path, qt_data: dict[str, Path]) -> None:
    w = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    w.open_model(qt_model_path)
    w.open_folder(qt_data["mvtec"])
    w.toolbar.batch_spin.setValue(3)
    w.toolbar.workers_spin.setValue(2)
    w.toolbar.device_combo.setCurrentText("cpu")
    w.toolbar.set_precision("fast")
    w.image_pane.set_opacity(20)
    w.image_pane.set_colormap("viridis")
    w.splitter.setSizes([300, 900, 300])
    sizes = w.splitter.sizes()
    w.close()
    again = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(again)  # type: ignore[attr-defined]
    assert again.toolbar.batch_spin.value() == 3
    assert again.toolbar.workers_spin.value() == 2
    assert again.toolbar.device_combo.currentText() == "cpu"
    assert again.toolbar.precision == "fast" and again.toolbar.precision_combo.currentText() == "fast"
    assert again.image_pane.opacity_slider.value() == 20
    assert again.image_pane.cmap_combo.currentText() == "viridis"
    assert again.splitter.sizes() == sizes
    assert again.settings.recent("models") == [str(qt_model_path.resolve())]
    assert again.settings.recent("folders") == [str(qt_data["mvtec"].resolve())]
    assert math.isnan(again.threshold)  # domain values come from the model, not settings


def test_menus_list_the_commands_with_unique_shortcuts(window: MainWindow) -> None:
    bar = window.menuBar()
    menus = {a.text().replace("&", ""): a.menu() for a in bar.actions()}
    assert list(menus) == ["File", "Model", "Review", "View"]
    file_items = [a.text() for a in menus["File"].actions() if not a.isSeparator()]
    for text in ("Open model…", "Open folder…", "Open run…", "Recent runs", "Resume run", "Export report…",
                 "Import official PatchCore model…", "Quit"):
        assert text in file_items, text
    model_items = [a.text() for a in menus["Model"].actions()]
    assert "Train new model…" in model_items and "Save threshold to model…" in model_items
    keys = [a.shortcut().toString() for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys)), sorted(keys)  # an ambiguous shortcut would fire nothing
    assert {"Ctrl+O", "Ctrl+Shift+O", "Ctrl+Alt+O", "Ctrl+R", "Ctrl+Shift+R", "Ctrl+E", "Ctrl+T", "O", "N",
            "Space"} <= set(keys)
    # Nothing to resume or export before a run; the reason is on the action.
    assert not window.menus.resume_action.isEnabled() and not window.menus.export_action.isEnabled()
    assert window.menus.resume_action.toolTip() == "no run file is open."


def test_fast_precision_run_uses_its_own_model_copy(ready: MainWindow, run_to_end: Callable) -> None:
    """Choosing "fast" scores with the fast path on a copy; the window's (exact) model,
    which the overlays use, keeps its search and NCHW backbone."""
    import torch

    w = ready
    assert run_to_end(w) is False
    st = w.store
    assert st is not None
    exact = st.scores.copy()
    w.toolbar.set_precision("fast")
    assert run_to_end(w) is False
    st = w.store
    assert st is not None
    ok = ~np.isnan(exact)
    np.testing.assert_allclose(st.scores[ok], exact[ok], rtol=1e-2)
    assert w.model is not None and w.model.precision == "exact" and w.model.search.backend == "blocked"
    conv = next(m for m in w.model.extractor.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # not switched to channels-last under the window's feet
    with RunFile.open(w.session.path, readonly=True) as run:
        assert run.settings["precision"] == "fast"
