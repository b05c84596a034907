"""The window's run-file commands: open a saved run, and take over the file a new run creates.

They change the inspection through the document (model, folder, results, thresholds,
run file); the panels follow its signals.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from PySide6.QtWidgets import QWidget

from patchcore_gui.core.run_file import RunFileError

from . import file_dialogs, gc_freeze
from .background import one_line
from .document import InspectionDocument, is_same_file
from .run_actions import RunActions
from .run_loading import load_run
from .run_session import GuardedRunFile
from .run_view import RunView
from .settings import AppSettings
from .toolbar import MainToolBar


class RunFiles:
    """Open run files into ``doc``; hold the file a new run creates."""

    def __init__(self, doc: InspectionDocument, settings: AppSettings, runs: RunActions, view: RunView,
                 toolbar: MainToolBar) -> None:
        self.doc, self.settings, self.runs, self.view, self.toolbar = doc, settings, runs, view, toolbar
        runs.controller.store_opened.connect(self.on_store_opened)
        runs.controller.store_failed.connect(self.on_store_failed)

    def open_run(self, path: str | os.PathLike[str]) -> bool:
        """Show a saved run again: table, grids, thresholds, reviews and (if unchanged) its model.

        Read-only, with the reason shown, when another window or process writes it.
        """
        doc, path = self.doc, Path(path)
        if doc.session.path is not None and is_same_file(path, doc.session.path):
            doc.show_status(f"{path.name} is already open", 5000)
            return True
        if not self.runs.confirm_stop("opening another run"):
            return False
        self.runs.stop_for_change()
        gc_freeze.release()  # the results being replaced may be collected again
        try:
            loaded = load_run(path, doc.model)
        except RunFileError as exc:
            doc.report_error(f"Cannot open the run: {exc}")
            return False
        except Exception as exc:  # any unreadable file: one line, the app goes on
            doc.report_error(f"Cannot open the run {path.name}: {one_line(exc)}")
            return False
        doc.close_run_file()  # a change still pending belongs to the previous run
        doc.set_model(loaded.model, loaded.model_name, loaded.summary or None)
        doc.set_folder(loaded.image_set)
        doc.next_run_key()
        doc.set_results(loaded.results)
        doc.set_pixel_threshold(loaded.pixel_threshold)
        if math.isfinite(loaded.image_threshold):
            doc.set_thresholds(loaded.image_threshold, loaded.store.review_from, loaded.threshold_origin)
        if loaded.batch_size:
            self.toolbar.batch_spin.setValue(loaded.batch_size)
        doc.attach_run_file(loaded.store, (loaded.image_threshold, loaded.pixel_threshold), loaded.model_note)
        self.settings.add_recent("runs", path)
        self.settings.last_opened = path
        self.view.flush()
        st = loaded.results
        doc.show_status(f"Run {path.name}: {st.count:,} of {st.size:,} images scored ({loaded.status})")
        notes = " ".join(n for n in (loaded.readonly_note, loaded.model_note) if n)
        if notes:
            doc.report_error(notes)
        gc_freeze.settle()  # the run's results stay as they are now: keep full collections off them
        return True

    def ask_open_run(self, parent: QWidget) -> None:
        """File > Open run…: choose a run file, starting where the last one was."""
        recent = self.settings.recent("runs")
        start = str(Path(recent[0]).parent) if recent else str(self.settings.runs_dir)
        path = file_dialogs.ask_run_path(parent, start)
        if path:
            self.open_run(path)

    def on_store_opened(self, store: GuardedRunFile) -> None:
        """The worker created the new run's file: the document holds it from now on."""
        doc = self.doc
        doc.attach_run_file(store, (store.image_threshold, store.pixel_threshold))
        # Thresholds moved before the run started belong in its log too.
        doc.commit_threshold("image", f"{doc.threshold_origin} (before the run started)")
        doc.commit_threshold("pixel", "set before the run started")
        doc.commit_threshold("review", "review band set before the run started")
        self.settings.add_recent("runs", store.path)
        self.settings.last_opened = store.path

    def on_store_failed(self, message: str) -> None:
        """The run's file cannot be created, or a write failed: the run goes on in memory."""
        session = self.doc.session
        if session.store is None:
            session.start_memory_only(message)
        else:
            session.write_failed(message)
