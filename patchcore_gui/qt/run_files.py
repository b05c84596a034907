"""The window's run-file commands: open a saved run, resume it, take over a new run's file.

Functions of the window (like ``review``), so ``main_window`` stays the wiring hub.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from patchcore_gui.core.runstore import RunStoreError

from . import dialogs, heap
from .background import one_line
from .run_loading import load_run
from .run_session import GuardedRunStore
from .threshold_file import is_same_file

if TYPE_CHECKING:
    from .main_window import MainWindow


def open_run(w: MainWindow, path: str | os.PathLike[str]) -> bool:
    """Show a saved run again: table, grids, thresholds, reviews and (if unchanged) its model.

    Read-only, with the reason shown, when another window or process writes it.
    """
    path = Path(path)
    if w.session.path is not None and is_same_file(path, w.session.path):
        w.statusBar().showMessage(f"{path.name} is already open", 5000)
        return True
    w._stop_for_change()
    heap.release()  # the results being replaced may be collected again
    try:
        loaded = load_run(path, w.model)
    except RunStoreError as exc:
        w._show_error(f"Cannot open the run: {exc}")
        return False
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one line, the app goes on
        w._show_error(f"Cannot open the run {path.name}: {one_line(exc)}")
        return False
    w.threshold_panel.commit_pending()  # a change still pending belongs to the previous run
    w.session.close()
    w.model = loaded.model
    w.image_pane.set_model(loaded.model)
    w.card.set_summary(loaded.summary or None, loaded.model_name)
    w.threshold_panel.set_enabled(True)
    w.image_set = loaded.image_set
    w.toolbar.set_folder(Path(loaded.image_set.root), loaded.image_set)
    w._run_key += 1
    w.view.install(loaded.results)
    w.set_pixel_threshold(loaded.pixel_threshold)
    if math.isfinite(loaded.image_threshold):
        w.set_threshold(loaded.image_threshold, loaded.threshold_origin)
    w._logged = {"image": loaded.image_threshold, "pixel": loaded.pixel_threshold}
    w._run_model_note = loaded.model_note
    if loaded.batch_size:
        w.toolbar.batch_spin.setValue(loaded.batch_size)
    w.session.attach(loaded.store)
    w.settings.add_recent("runs", path)
    w.dialogs.refresh_threshold_log()
    w.view.flush()
    st = loaded.results
    w.statusBar().showMessage(f"Run {path.name}: {st.count:,} of {st.size:,} images scored ({loaded.status})")
    notes = " ".join(n for n in (loaded.readonly_note, loaded.model_note) if n)
    if notes:
        w._show_error(notes)
    w._update_actions()
    heap.settle()  # the run's results stay as they are now: keep full collections off them
    return True


def resume_blocker(w: MainWindow) -> str:
    """Why the open run cannot be resumed now ("" when it can)."""
    s, st = w.session, w.store
    if s.store is None or st is None:
        return "no run file is open."
    if w.is_running():
        return "a run is in progress."
    if s.readonly:
        return f"{s.path.name if s.path else 'the run'} is open read-only (another window or process writes it)."
    if s.write_error:
        return f"the run file cannot be written ({s.write_error})."
    if st.count >= st.size:
        return "every image of this run is scored already."
    if w.model is None or w._run_model_note:
        return w._run_model_note or "the run's model is not open."
    run_model = str(s.meta().get("model_path") or "")
    if run_model and not is_same_file(run_model, w.model.path):
        return (f"the open model ({w.model.path.name if w.model.path else 'unsaved'}) is not the run's model "
                f"({Path(run_model).name}).")
    return ""


def resume_run(w: MainWindow) -> bool:
    """Score the images the open run has not done yet, in the run's own batch size.

    That batch size reproduces the batches, and so the scores, of an uninterrupted run.
    """
    why = resume_blocker(w)
    if why:
        w._show_error(f"Cannot resume: {why}")
        return False
    store, st = w.session.store, w.store
    assert store is not None and st is not None and w.model is not None
    batch = int(store.settings.get("batch_size") or w.toolbar.batch_spin.value())
    w.toolbar.batch_spin.setValue(batch)
    # The run's own arithmetic too, so resumed scores match the ones already stored.
    precision = str(store.settings.get("precision") or w.toolbar.precision)
    w.toolbar.set_precision(precision)
    w._begin(st.size, st.count)
    w.controller.start(
        w.model, None, device=w.toolbar.device_combo.currentText(), batch_size=batch,
        workers=w.toolbar.workers_spin.value(), resume=store, precision=precision,
    )
    w.statusBar().showMessage(f"Resuming: {st.size - st.count:,} images left (batch size {batch})…")
    return True


def on_store_opened(w: MainWindow, store: GuardedRunStore) -> None:
    """The worker created the new run's file: the window holds it from now on."""
    w.session.attach(store)
    w._run_model_note = ""
    w._logged = {"image": store.image_threshold, "pixel": store.pixel_threshold}
    # Thresholds moved before the run started belong in its log too.
    w.commit_threshold("image", f"{w.threshold_origin} (before the run started)")
    w.commit_threshold("pixel", "set before the run started")
    w.settings.add_recent("runs", store.path)
    w.dialogs.refresh_threshold_log()


def on_store_failed(w: MainWindow, message: str) -> None:
    """The run's file cannot be created, or a write failed: the run goes on in memory."""
    if w.session.store is None:
        w.session.start_memory_only(message)
    else:
        w.session.write_failed(message)


def ask_open_run(w: MainWindow) -> None:
    recent = w.settings.recent("runs")
    path = dialogs.ask_run_path(w, str(Path(recent[0]).parent) if recent else str(w.settings.runs_dir))
    if path:
        open_run(w, path)
