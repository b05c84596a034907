"""Run files from the window: written by every run, opened again, resumed, shared, failing."""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.run_file import RunFile
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_SCORE
from patchcore_gui.qt.settings import AppSettings


@pytest.fixture
def ready(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path]) -> MainWindow:
    assert window.open_model(qt_model_path), window.last_error
    assert window.open_folder(qt_data["mvtec"]), window.last_error
    return window


def new_window(qtbot: object, settings_path: Path) -> MainWindow:
    w = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    return w


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32), equal_nan=True))


def test_gui_run_writes_a_run_file_with_the_tables_scores(ready: MainWindow, run_to_end: Callable) -> None:
    w = ready
    assert run_to_end(w) is False
    path = w.session.path
    assert path is not None and path.is_file()
    # Default place: <AppDataLocation>/runs (the test's XDG data folder), dated name.
    assert path.parent == w.settings.runs_dir
    assert str(path).startswith(os.environ["XDG_DATA_HOME"])
    assert re.fullmatch(r"\d{8}-\d{6}-mvtec-m\.pcrun", path.name)  # folder, then the model (m.patchcore)
    assert path.name in w.windowTitle() and path.name in w.run_file_label.text()
    st = w.store
    assert st is not None and st.count == 10
    with RunFile.open(path, readonly=True) as run:
        cols = run.columns()
        assert run.status == "finished"
        assert cols["done"].all()
        assert same(cols["score"], st.scores)
        m = w.table_model
        shown = {m.image_at(r): m.data(m.index(r, COL_SCORE)) for r in range(m.rowCount())}
        for i, text in shown.items():
            s = float(cols["score"][i])
            assert text == ("—" if np.isnan(s) else f"{s:.3f}")
        good = int(np.nanargmin(st.scores))
        assert np.array_equal(run.grid(good), st.grids[good])
        assert run.settings["batch_size"] == w.toolbar.batch_spin.value()
    assert w.settings.recent("runs") == [str(path.resolve())]
    assert not w.menus.resume_action.isEnabled()  # nothing left to score
    assert w.menus.export_action.isEnabled()


def test_open_run_restores_table_threshold_and_reviews(
    ready: MainWindow, run_to_end: Callable, qtbot: object, settings_path: Path
) -> None:
    w = ready
    run_to_end(w)
    path = w.session.path
    st = w.store
    assert path is not None and st is not None
    tuned = float(np.nanmedian(st.scores))
    w.set_threshold(tuned, "line 3 tuning", log=True)
    w.results.select_row(0)
    marked = w.results.current_image()
    assert w.mark_current("NG")
    scores = st.scores.copy()
    w.close()  # releases the run file

    w2 = new_window(qtbot, settings_path)
    w2.toolbar.batch_spin.setValue(7)
    # File > Recent runs lists it (shared settings); choosing it opens the run.
    w2.menus.recent_runs_menu.aboutToShow.emit()
    recent = [a for a in w2.menus.recent_runs_menu.actions() if a.text() == str(path.resolve())]
    assert len(recent) == 1
    recent[0].trigger()
    assert w2.session.path == path, w2.last_error
    assert not w2.session.readonly and w2.last_error == ""
    s2 = w2.store
    assert s2 is not None and s2.count == 10 and w2.table_model.rowCount() == 10
    assert same(s2.scores, scores)
    assert w2.threshold == pytest.approx(tuned)
    assert "line 3 tuning" in w2.threshold_panel.origin_label.text()
    assert s2.operator[marked] == 2 and w2.table_model.review_kind == "any"
    assert w2.toolbar.batch_spin.value() == 8  # the run's own batch size
    assert w2.model is not None and w2.model.path == ready.model.path  # type: ignore[union-attr]
    bad = next(i for i, p in enumerate(s2.paths) if "square" in p)
    assert w2.results.select_image(bad)
    assert w2.image_pane.current_map is not None  # heatmap from the stored grid
    assert w2.threshold_panel.ng_label.text() == f"NG {int(np.sum(scores > tuned))}"
    assert w2.settings.recent("runs")[0] == str(path.resolve())


def test_open_run_without_its_model_still_shows_scores(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable,
    qtbot: object, settings_path: Path, tmp_path: Path,
) -> None:
    copy = tmp_path / "moved.patchcore"
    shutil.copy(qt_model_path, copy)
    window.open_model(copy)
    window.open_folder(qt_data["mvtec"])
    run_to_end(window)
    path, scores, thr = window.session.path, window.store.scores.copy(), window.threshold  # type: ignore[union-attr]
    window.close()
    copy.unlink()
    w2 = new_window(qtbot, settings_path)
    assert w2.open_run(path)
    assert "moved.patchcore is missing" in w2.last_error
    assert w2.model is None and w2.store is not None
    assert same(w2.store.scores, scores) and w2.threshold == pytest.approx(thr)
    assert w2.card.title.text() == "moved.patchcore (not available)"
    assert not w2.menus.resume_action.isEnabled()
    junk = tmp_path / "junk.pcrun"
    junk.write_bytes(b"not sqlite at all" * 100)
    assert not w2.open_run(junk)
    assert w2.last_error.startswith("Cannot open the run: junk.pcrun: not a run file")
    assert w2.session.path == path  # the open run stays


def test_cancel_then_resume_gives_the_uninterrupted_scores(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object,
    run_to_end: Callable, settings_path: Path,
) -> None:
    w = window
    w.open_model(qt_model_path)
    w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(4)
    assert run_to_end(w) is False
    full = w.store.scores.copy()  # type: ignore[union-attr]
    # A second run, cancelled after its first batch: the run file says so.
    w.controller.batch_ready.connect(lambda *_: w.cancel_run())
    assert run_to_end(w) is True
    w.controller.batch_ready.disconnect()
    w.controller.batch_ready.connect(w.view.on_batch)
    path = w.session.path
    done = w.store.count  # type: ignore[union-attr]
    assert 4 <= done < 48
    assert w.menus.resume_action.isEnabled() and w.toolbar_resume_action.isVisible()
    assert "Resume" in w.statusBar().currentMessage()
    w.close()
    # Another window opens it and resumes with the run's batch size.
    w2 = new_window(qtbot, settings_path)
    w2.toolbar.batch_spin.setValue(3)
    assert w2.open_run(path)
    assert w2.store is not None and w2.store.count == done
    assert w2.menus.resume_action.isEnabled(), w2.resume_blocker()
    with qtbot.waitSignal(w2.run_finished, timeout=60_000) as blocker:  # type: ignore[attr-defined]
        assert w2.resume_run()
    assert blocker.args == [False]
    assert w2.store.count == 48 and w2.table_model.rowCount() == 48
    assert w2.toolbar.batch_spin.value() == 4
    assert same(w2.store.scores, full)
    with RunFile.open(path, readonly=True) as run:
        assert run.status == "finished"
        assert same(run.columns()["score"], full)
    assert not w2.menus.resume_action.isEnabled() and not w2.toolbar_resume_action.isVisible()
    w2.close()
    assert w2.controller.live_threads() == 0


def test_second_window_gets_the_run_read_only(
    ready: MainWindow, run_to_end: Callable, qtbot: object, settings_path: Path
) -> None:
    run_to_end(ready)
    path = ready.session.path
    w2 = new_window(qtbot, settings_path)
    assert w2.open_run(path)
    assert w2.session.readonly
    assert "read-only because" in w2.last_error and "another window/process" in w2.last_error
    assert "(read-only)" in w2.windowTitle()
    w2.results.select_row(0)
    assert not w2.mark_current("OK")
    assert "read-only" in w2.last_error
    w2.set_threshold(w2.threshold * 1.5, log=True)
    assert not w2.menus.resume_action.isEnabled()
    with RunFile.open(path, readonly=True) as run:
        assert run.operator_verdicts() == {} and run.threshold_log() == []
    # The first window still writes it.
    ready.results.select_row(0)
    assert ready.mark_current("OK")
    with RunFile.open(path, readonly=True) as run:
        assert len(run.operator_verdicts()) == 1


def test_write_failure_keeps_results_in_memory_and_says_so_once(
    ready: MainWindow, run_to_end: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = RunFile.add_batch
    calls = {"n": 0}

    def full_disk(self: RunFile, result: object) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, result)  # type: ignore[arg-type]

    monkeypatch.setattr(RunFile, "add_batch", full_disk)
    told: list[str] = []
    ready.session.error.connect(told.append)
    ready.toolbar.batch_spin.setValue(4)
    assert run_to_end(ready) is False
    st = ready.store
    assert st is not None and st.count == 10 and ready.table_model.rowCount() == 10
    assert len(told) == 1
    assert "No space left on device" in told[0] and "in memory" in told[0] and "kept" in told[0]
    assert ready.last_error == told[0]
    assert "not saved" in ready.windowTitle()
    monkeypatch.setattr(RunFile, "add_batch", real)
    path = ready.session.path
    with RunFile.open(path, readonly=True) as run:
        assert run.status == "failed" and len(run.done_indices()) == 4
    # Reviews go on in memory (told once), never crash.
    ready.results.select_row(0)
    assert ready.mark_current("OK") and ready.mark_current("NG")
    assert len(told) == 2 and "not saved" in told[1]


def test_run_file_that_cannot_be_created_runs_in_memory(
    ready: MainWindow, run_to_end: Callable, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    ready.settings.runs_dir = blocker
    assert run_to_end(ready) is False
    assert ready.store is not None and ready.store.count == 10
    assert "could not be created" in ready.last_error and "in memory" in ready.last_error
    assert ready.session.path is None and "in memory" in ready.windowTitle()
    assert ready.dialogs.show_report() is None
    assert "Export needs a run file" in ready.last_error


def test_finished_or_opened_results_are_kept_out_of_full_collections(
    ready: MainWindow, run_to_end: Callable, qtbot: object, settings_path: Path
) -> None:
    """A full garbage collection must not walk the loaded results (~350 ms at 100k)."""
    import gc

    def walked(obj: object) -> bool:
        return any(o is obj for o in gc.get_objects())

    w = ready
    gc.unfreeze()
    assert w.image_set is not None and walked(w.image_set.paths)
    run_to_end(w)
    assert gc.get_freeze_count() > 0
    assert w.image_set is not None and not walked(w.image_set.paths)
    assert w.store is not None and w.store.count == 10  # frozen, not gone
    path = w.session.path
    assert path is not None
    w.close()
    gc.unfreeze()

    w2 = new_window(qtbot, settings_path)
    assert w2.open_run(path), w2.last_error
    assert w2.image_set is not None and not walked(w2.image_set.paths)


def test_a_run_of_uris_shows_its_pictures_and_resumes_in_the_window(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], qtbot: object, tmp_path: Path,
) -> None:
    """``predict --images file:///...`` (s3://, gs://... alike) names each image by its URI in
    the run file. The window fetches the pictures to show them, and a resume fetches the
    images still to score: scores, not "file not found" rows."""
    import threading

    from patchcore_gui.core.engine import iter_predict
    from patchcore_gui.core.model import PatchCoreModel
    from patchcore_gui.core.run_driver import predict_into_run
    from patchcore_gui.core.uri_listing import list_uri_images
    from patchcore_gui.core.uri_scoring import uri_iter_predict

    image_set, _ = list_uri_images(qt_data["many"].as_uri())
    model = PatchCoreModel.load(qt_model_path, device="cpu")
    run, stop = tmp_path / "uri.pcrun", threading.Event()
    part = predict_into_run(model, image_set, run, batch_size=4, scorer=uri_iter_predict, cancel=stop,
                            on_batch=lambda r: stop.set())
    assert part.status == "cancelled" and 0 < part.done < 48
    w = window
    assert w.open_run(run), w.last_error
    assert w.store is not None and w.store.count == part.done
    w.results.select_row(0)
    qtbot.waitUntil(lambda: w.image_pane.base_item.image is not None, timeout=10_000)  # type: ignore[attr-defined]
    assert "cannot be shown" not in w.image_pane.placeholder.text()
    assert w.menus.resume_action.isEnabled(), w.resume_blocker()
    with qtbot.waitSignal(w.run_finished, timeout=60_000) as blocker:  # type: ignore[attr-defined]
        assert w.resume_run()
    assert blocker.args == [False]
    with RunFile.open(run, readonly=True) as rf:
        assert rf.status == "finished" and rf.errors() == {}
        assert rf.paths() == [str(p) for p in image_set.paths]
        got = rf.columns()["score"]
    local = sorted(qt_data["many"].glob("*.png"))
    assert [str(p) for p in image_set.paths] == [p.as_uri() for p in local]
    want = np.concatenate([r.scores for r in iter_predict(model, local, batch_size=4)])
    assert np.allclose(got, want, rtol=1e-6, atol=0)
