"""What the window is inspecting, without a single widget: the inspection document.

One ``InspectionDocument`` per window holds the open model, the image folder, the
results (``core.result_table.ResultTable``), the image and pixel thresholds, the
thresholds as last written to the run file's log, and the run-file session; it emits
a signal for every change. The window and its helpers change the inspection only
through it, and the panels follow its signals (the window connects them), so there is
one place each fact lives. The shape follows napari's ``ViewerModel``: state plus
events, no drawing; like napari's ``status``, a line for the status bar and errors for
the user are events too, so helpers need no window to talk to the user.

Imports ``PySide6.QtCore`` only (never QtWidgets / QtGui): a test holds it to that.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.result_table import ResultTable
from patchcore_gui.core.thresholds import check_thresholds

from .run_session import GuardedRunFile, RunSession

#: Threshold kinds, as the run file's threshold log names them ("review": the review band's start).
KINDS = ("image", "pixel", "review")


def same_value(a: float, b: float) -> bool:
    """Equal thresholds, NaN equal to NaN (a band that stays off is no change)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def is_same_file(a: str | Path, b: str | Path | None) -> bool:
    """True when ``a`` and ``b`` name the same file (``b`` None: False)."""
    try:
        return b is not None and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class InspectionDocument(QObject):
    """The state of one window's inspection, and a signal for each change."""

    #: a model was opened (or the run's model is missing: ``model`` is None); maps change.
    model_changed = Signal()
    #: the same model under another name / summary (saved with new thresholds); maps stay.
    model_info_changed = Signal()
    #: a folder of images was opened.
    folder_changed = Signal()
    #: a new ``ResultTable`` (empty for a new run, filled from a run file) or None.
    results_changed = Signal()
    #: the image threshold moved (value); ``threshold_origin`` says why.
    threshold_changed = Signal(float)
    #: the pixel threshold moved (value).
    pixel_threshold_changed = Signal(float)
    #: the review band's start moved (value; NaN: the band is off).
    review_changed = Signal(float)
    #: the run file was opened, closed, or its mode / state changed (title, actions).
    run_file_changed = Signal()
    #: a threshold change was written to the run file's log.
    threshold_logged = Signal()
    #: a run started (True) or ended (False).
    running_changed = Signal(bool)
    #: pending edits (a threshold being dragged) must be committed now: the run file is
    #: about to close, or a report is about to read it.
    flush_requested = Signal()
    #: a message for the user (status bar and a non-modal box).
    error = Signal(str)
    #: a status-bar line and how long it stays (ms, 0: until replaced).
    status = Signal(str, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: PatchCoreModel | None = None
        #: How the model card names the model, and what it lists (None: the model's own).
        self.model_name = ""
        self.model_summary: dict[str, Any] | None = None
        self.image_set: ImageSet | None = None
        self.results: ResultTable | None = None
        self.image_threshold = math.nan
        self.pixel_threshold = math.nan
        #: Start of the review band (REVIEW when review_from < score <= threshold); NaN: no band.
        self.review_from = math.nan
        #: Where the image threshold comes from, in a few words (kept in the log's notes).
        self.threshold_origin = ""
        #: Thresholds as recorded in the run file (a change is logged against these).
        self.logged = {"image": math.nan, "pixel": math.nan, "review": math.nan}
        #: Why the open run cannot be resumed with the open model ("" when it can).
        self.run_model_note = ""
        #: Changes with every run or opened run file: keys the image pane's map cache.
        self.run_key = 0
        self.running = False
        self.session = RunSession(self)
        self.session.error.connect(self.error)
        self.session.changed.connect(self.run_file_changed)
        self.session.threshold_logged.connect(self.threshold_logged)

    # ------------------------------------------------------------------ talking to the user
    def report_error(self, text: str) -> None:
        """Tell the user ``text`` (the window shows it in a box and the status bar)."""
        self.error.emit(text)

    def show_status(self, text: str, ms: int = 0) -> None:
        """A status-bar line for ``ms`` milliseconds (0: until the next one)."""
        self.status.emit(text, ms)

    # ------------------------------------------------------------------ model and folder
    def set_model(self, model: PatchCoreModel | None, name: str, summary: dict[str, Any] | None = None) -> None:
        """A new model (None: the run's model is not available); ``summary`` defaults to its own."""
        self.model = model
        self.model_name = name
        self.model_summary = summary if summary is not None else (model.summary() if model is not None else None)
        self.model_changed.emit()

    def replace_model(self, model: PatchCoreModel, name: str) -> None:
        """The open model saved as a new file (same bank, other thresholds): maps stay valid."""
        self.model = model
        self.model_name = name
        self.model_summary = model.summary()
        self.model_info_changed.emit()

    def set_folder(self, image_set: ImageSet | None) -> None:
        self.image_set = image_set
        self.folder_changed.emit()

    # ------------------------------------------------------------------ results and run file
    def next_run_key(self) -> int:
        """A new key for the results about to be shown (a run, or an opened run file)."""
        self.run_key += 1
        return self.run_key

    def set_results(self, results: ResultTable | None) -> None:
        """Show ``results`` (the caller has closed or attached the run file)."""
        self.results = results
        self.results_changed.emit()

    def new_results(self) -> None:
        """An empty result table for the open folder; the previous run file is closed."""
        self.close_run_file()
        self.set_results(ResultTable(self.image_set) if self.image_set is not None else None)

    def close_run_file(self) -> None:
        """Commit pending edits to the open run file, then close it; nothing is logged against it after."""
        self.flush_edits()
        self.session.close()
        self.run_model_note = ""
        self.logged = {"image": math.nan, "pixel": math.nan, "review": math.nan}
        self.run_file_changed.emit()

    def attach_run_file(self, store: GuardedRunFile, logged: tuple[float, float], model_note: str = "") -> None:
        """Hold ``store`` as the run file; ``logged``: its (image, pixel) thresholds as recorded
        (its review band's start is read from it)."""
        # Before attaching: its ``changed`` signal makes the window ask ``resume_blocker``.
        self.logged = {"image": logged[0], "pixel": logged[1], "review": store.review_from}
        self.run_model_note = model_note
        self.session.attach(store)

    def flush_edits(self) -> None:
        """Ask whoever holds an uncommitted edit (the threshold panel) to commit it now."""
        self.flush_requested.emit()

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)

    # ------------------------------------------------------------------ thresholds
    def set_image_threshold(self, value: float, origin: str = "set by hand", log: bool = False) -> None:
        """Move the image threshold (non-finite values are ignored); ``log``: record it now.

        A value below the review band's start is refused (a status line says why): the
        band would be inverted.
        """
        value = float(value)
        if not math.isfinite(value) or not self._valid(value, self.review_from):
            return
        self.image_threshold = value
        self.threshold_origin = origin
        self.threshold_changed.emit(value)
        if log:
            self.commit_threshold("image")

    def set_review_from(self, value: float, log: bool = False) -> bool:
        """Move the review band's start (NaN: band off); ``log``: record it now.

        Refused (False, a status line says why) when negative, infinite or above the
        image threshold.
        """
        value = float(value)
        if not self._valid(self.image_threshold, value):
            return False
        if not same_value(value, self.review_from):
            self.review_from = value
            self.review_changed.emit(value)
        if log:
            self.commit_threshold("review")
        return True

    def set_thresholds(self, image: float, review_from: float, origin: str) -> bool:
        """Both image thresholds at once (a model's or a run's pair), checked as a pair."""
        image, review_from = float(image), float(review_from)
        if not math.isfinite(image) or not self._valid(image, review_from):
            return False
        band_moved = not same_value(review_from, self.review_from)
        self.image_threshold, self.review_from, self.threshold_origin = image, review_from, origin
        self.threshold_changed.emit(image)
        if band_moved:
            self.review_changed.emit(review_from)
        return True

    def _valid(self, image: float, review_from: float) -> bool:
        """``core.thresholds.check_thresholds`` on the pair; False with a status line when refused."""
        try:
            check_thresholds(image if math.isfinite(image) else None, review_from)
        except ValueError as exc:
            self.show_status(f"Not applied: {exc}", 8000)
            return False
        return True

    def set_pixel_threshold(self, value: float) -> None:
        """Anomaly-map level outlined as the defect region (and the heatmap's mid colour)."""
        self.pixel_threshold = float(value)
        self.pixel_threshold_changed.emit(self.pixel_threshold)

    def threshold(self, kind: str) -> float:
        """The current ``"image"`` or ``"pixel"`` threshold, or the ``"review"`` band's start."""
        return {"image": self.image_threshold, "pixel": self.pixel_threshold, "review": self.review_from}[kind]

    def commit_threshold(self, kind: str = "image", note: str = "") -> bool:
        """Record the current image (or pixel) threshold in the run's log if it changed.

        The image threshold and the band's start are committed together, in the order
        the run file accepts (each change keeps the start at or below the threshold).
        """
        if kind == "pixel":
            return self._commit("pixel", note)
        order = ("image", "review")
        if not same_value(self.review_from, self.logged["review"]) and self.logged["review"] > self.image_threshold:
            order = ("review", "image")  # the threshold drops below the old start: move the start first
        done = [self._commit(k, note) for k in order]
        return any(done)

    def _commit(self, kind: str, note: str) -> bool:
        new, old = self.threshold(kind), self.logged[kind]
        if self.session.store is None or same_value(new, old) or (kind != "review" and not math.isfinite(new)):
            return False
        why = note or (self.threshold_origin if kind == "image" else "") or "set by hand"
        if self.session.log_threshold(old, new, why, kind):
            self.logged[kind] = new
            return True
        return False

    def reset_thresholds(self, log: bool = False) -> bool:
        """Back to the thresholds stored in the model file (``log``: record the change).

        False when there is no model, or it has no image threshold (the image threshold
        then stays where it is).
        """
        model = self.model
        if model is None:
            return False
        self.set_pixel_threshold(model.pixel_threshold)
        t = model.image_threshold
        if math.isfinite(t):
            origin = f"from the model ({model.threshold_info.get('source', '?')})"
            if not self.set_thresholds(t, model.review_from, origin):
                self.set_thresholds(t, math.nan, origin)  # an unusable band in the file: none
        if log:
            self.commit_threshold("image", "back to the model's value")
            self.commit_threshold("pixel", "back to the model's value")
        return math.isfinite(t)

    # ------------------------------------------------------------------ questions
    def resume_blocker(self) -> str:
        """Why the open run cannot be resumed now ("" when it can)."""
        s, st = self.session, self.results
        if s.store is None or st is None:
            return "no run file is open."
        if self.running:
            return "a run is in progress."
        if s.readonly:
            return f"{s.path.name if s.path else 'the run'} is open read-only (another window or process writes it)."
        if s.write_error:
            return f"the run file cannot be written ({s.write_error})."
        if st.count >= st.size:
            return "every image of this run is scored already."
        if self.model is None or self.run_model_note:
            return self.run_model_note or "the run's model is not open."
        run_model = str(s.meta().get("model_path") or "")
        if run_model and not is_same_file(run_model, self.model.path):
            return (f"the open model ({self.model.path.name if self.model.path else 'unsaved'}) is not the run's "
                    f"model ({Path(run_model).name}).")
        return ""
