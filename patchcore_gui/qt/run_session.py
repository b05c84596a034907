"""The run file the window shows: naming, opening, and every write the GUI makes to it.

Each GUI run writes a run file (``core.run_file``) through ``predict_into_run`` in the
worker thread. Once the worker has created it, the window holds the same
``RunFile`` for the operator's verdicts and threshold changes (its methods are
serialised, so both threads may write). A run file that cannot be written (disk
full, removed folder) never stops the inspection: the run goes on in memory, the
user is told once, and later writes are not attempted.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from patchcore_gui.core.results import BatchResult
from patchcore_gui.core.run_file import RunFile, RunLockedError, ThresholdChange

from .background import one_line

RUN_SUFFIX = ".pcrun"
RUN_FILTER = "PatchCore run (*.pcrun);;All files (*)"


def _safe(name: str, default: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", name).strip("._") or default


def run_file_name(folder_name: str, when: datetime | None = None, model_name: str = "") -> str:
    """``<yyyymmdd-hhmmss>-<folder name>[-<model name>].pcrun`` (made safe for any file system).

    The model's name (its file's stem) tells apart two runs of one folder in the recent list.
    """
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    model = _safe(Path(model_name).stem, "")[:60] if model_name else ""
    return f"{stamp}-{_safe(folder_name, 'images')[:80]}{'-' + model if model else ''}{RUN_SUFFIX}"


def new_run_path(runs_dir: Path, folder_name: str, when: datetime | None = None, model_name: str = "") -> Path:
    """A run file path that does not exist yet (``-2``, ``-3``... within one second)."""
    first = runs_dir / run_file_name(folder_name, when, model_name)
    path, n = first, 1
    while path.exists():
        n += 1
        path = first.with_name(f"{first.stem}-{n}{RUN_SUFFIX}")
    return path


class GuardedRunFile(RunFile):
    """A RunFile whose result writes never raise: the first failure is reported once.

    ``predict_into_run`` stops a run when a write fails; the GUI instead keeps scoring
    into memory. After a failure the file's status is set to "failed" (if it can still
    be written) and no further batch is written, so the file never claims to be
    complete when it is not.
    """

    #: Called once, from the writing thread, with a one-line reason.
    on_write_failed: Callable[[str], None] | None = None
    write_error: str = ""

    def add_batch(self, result: BatchResult) -> None:
        if self.write_error:
            return
        try:
            super().add_batch(result)
        except Exception as exc:  # disk full, I/O error, closed file...
            self._failed(exc)

    def set_status(self, status: str, message: str = "") -> None:
        if self.write_error:
            status, message = "failed", f"run file write failed: {self.write_error}"
        try:
            super().set_status(status, message)
        except Exception as exc:
            if not self.write_error:
                self._failed(exc)

    def set_drift(self, record: dict[str, Any]) -> None:
        # The drift record is a note on the run: a file that cannot take it keeps its results.
        if self.write_error:
            return
        try:
            super().set_drift(record)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.write_error = one_line(exc)
        cb = self.on_write_failed
        if cb is not None:
            cb(self.write_error)


def open_run_file(path: str | os.PathLike[str]) -> tuple[GuardedRunFile, str]:
    """Open a run file for writing, else read-only when another window/process writes it.

    Returns the store and a note for the user ("" when opened for writing).
    Raises RunFileError (not a run file, missing...).
    """
    try:
        return GuardedRunFile.open(path), ""  # type: ignore[return-value]
    except RunLockedError as exc:
        store = GuardedRunFile.open(path, readonly=True)
        why = str(exc).split(";")[0].strip()  # the advice after ";" is what we do here
        return store, (  # type: ignore[return-value]
            f"Opened read-only because the {why}. Verdicts and threshold changes are not saved in it; "
            "close the other window and open the run again to edit it."
        )


class RunSession(QObject):
    """The open run file, or none; every GUI write to it goes through here.

    ``error`` carries a message for the user (each kind of failure once per file);
    ``changed`` fires when the file, its mode or its state changes (title, actions).
    """

    error = Signal(str)
    changed = Signal()
    #: a threshold change was written to the run file.
    threshold_logged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store: GuardedRunFile | None = None
        self.path: Path | None = None
        #: Why results are not (or no longer) written to the file ("" when fine).
        self.write_error = ""
        #: A run that could not create its file at all: results live in memory only.
        self.memory_only = False
        self._told: set[str] = set()

    # ------------------------------------------------------------------ state
    @property
    def readonly(self) -> bool:
        return self.store is not None and self.store.readonly

    @property
    def writable(self) -> bool:
        """True when verdicts and threshold changes can be written."""
        return self.store is not None and not self.store.readonly and not self.write_error

    def title(self) -> str:
        """The run's part of the window title ("" without one)."""
        if self.memory_only:
            return "run not saved (in memory)"
        if self.path is None:
            return ""
        tail = " (read-only)" if self.readonly else (" (not saved: write failed)" if self.write_error else "")
        return self.path.name + tail

    # ------------------------------------------------------------------ lifecycle
    def attach(self, store: GuardedRunFile) -> None:
        """Take over an open store (created by the worker, or opened from a file)."""
        if store is not self.store:
            self.close()
        self.store = store
        self.path = Path(store.path)
        self.write_error = store.write_error
        self.memory_only = False
        self._told.clear()
        self.changed.emit()

    def start_memory_only(self, reason: str) -> None:
        """The run's file could not be created: say so once; results stay in memory."""
        self.close()
        self.memory_only = True
        self.write_error = reason
        self._tell("create", f"The run file could not be created ({reason}). The run goes on in memory: "
                             "results are shown but not saved, and no report can be exported from it.")
        self.changed.emit()

    def write_failed(self, reason: str) -> None:
        """The worker could not write a batch: results so far stay in the window."""
        self.write_error = reason
        name = self.path.name if self.path else "the run file"
        self._tell("write", f"Could not write to {name} ({reason}). The run goes on in memory and the "
                            "results so far are kept in the window, but from here on they are not saved in "
                            "the run file.")
        self.changed.emit()

    def close(self) -> None:
        """Close the store (the caller has stopped any run writing to it)."""
        if self.store is not None:
            # Closing a broken file (disk gone) must not stop the app.
            with contextlib.suppress(Exception):
                self.store.close()
        self.store = None
        self.path = None
        self.write_error = ""
        self.memory_only = False
        self._told.clear()

    # ------------------------------------------------------------------ facts
    def meta(self) -> dict[str, Any]:
        return self.store.meta if self.store is not None else {}

    def threshold_log(self) -> list[ThresholdChange]:
        if self.store is None:
            return []
        try:
            return self.store.threshold_log()
        except Exception:
            return []

    # ------------------------------------------------------------------ writes
    def log_threshold(self, old: float, new: float, note: str, kind: str = "image") -> bool:
        """Record a threshold change in the run file; False (user told once) when it cannot."""
        if not self._can_write("threshold", "threshold changes"):
            return False
        try:
            self.store.log_threshold(  # type: ignore[union-attr]
                old if math.isfinite(old) else math.nan, new, note, kind
            )
        except Exception as exc:
            self._tell("threshold-fail", f"Could not record the threshold change in the run file: {one_line(exc)}")
            return False
        self.threshold_logged.emit()
        return True

    def set_verdict(self, index: int, verdict: str, operator: str) -> bool:
        """Store an operator verdict ("OK", "NG" or "" to clear); False when not saved."""
        if not self._can_write("verdict", "operator verdicts"):
            return False
        try:
            self.store.set_operator_verdict(index, verdict, operator=operator)  # type: ignore[union-attr]
        except Exception as exc:
            self._tell("verdict-fail", f"Could not save the operator verdict in the run file: {one_line(exc)}")
            return False
        return True

    def _can_write(self, key: str, what: str) -> bool:
        if self.store is None:
            if self.memory_only:
                self._tell(key, f"This run has no run file: {what} are kept in memory only.")
            return False
        if self.store.readonly:
            self._tell(key, f"{self.path.name if self.path else 'The run'} is open read-only: "
                            f"{what} are not saved in it.")
            return False
        if self.write_error:
            self._tell(key, f"The run file cannot be written ({self.write_error}): {what} are not saved.")
            return False
        return True

    def _tell(self, key: str, text: str) -> None:
        if key not in self._told:
            self._told.add(key)
            self.error.emit(text)
