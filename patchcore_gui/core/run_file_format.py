"""The run file's format: SQLite schema, format constants, errors and small value helpers.

``core/run_file.py`` (the ``RunFile`` class) reads and writes this format; the writer
lock lives in ``core/run_file_lock.py``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

FORMAT_NAME = "patchcore_gui.run"
FORMAT_VERSION = 1
#: SQLite application_id of run files ("PCRN").
APPLICATION_ID = 0x5043524E
STATUSES = ("running", "finished", "cancelled", "failed")
VERDICTS = ("", "OK", "NG")
#: What the threshold log records: the image threshold, the pixel threshold, the review band's start.
THRESHOLD_KINDS = ("image", "pixel", "review")
#: Operator verdict codes in ``RunFile.columns()``.
OPERATOR_NONE, OPERATOR_OK, OPERATOR_NG = 0, 1, 2
TEST_DELAY_ENV = "PATCHCORE_GUI_TEST_BATCH_DELAY"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    idx INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    display TEXT NOT NULL,
    label INTEGER NOT NULL DEFAULT -1,
    defect_type TEXT NOT NULL DEFAULT '',
    mask_path BLOB,
    done INTEGER NOT NULL DEFAULT 0,
    size INTEGER,
    mtime_ns INTEGER,
    score REAL,
    grid BLOB,
    grid_h INTEGER,
    grid_w INTEGER,
    error TEXT NOT NULL DEFAULT '',
    batch INTEGER,
    verdict TEXT NOT NULL DEFAULT '',
    verdict_time TEXT,
    verdict_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE batches (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE threshold_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL,
    old REAL, new REAL, note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE lock (
    id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
    started TEXT NOT NULL, time TEXT NOT NULL, token TEXT NOT NULL
);
"""
class RunFileError(Exception):
    """A run file cannot be used as asked; ``str()`` is one line for the user."""


class RunLockedError(RunFileError):
    """Another window or process has the run file open for writing."""


class ModelChangedError(RunFileError):
    """The model file of a run is missing or no longer the file the run was started with."""


@dataclass(frozen=True)
class ThresholdChange:
    """One logged threshold change. ``kind`` is "image", "pixel" or "review" (the band's start; NaN: off)."""

    time: str
    kind: str
    old: float
    new: float
    note: str


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def display(raw: bytes) -> str:
    """A stored path as text (undecodable bytes shown as U+FFFD)."""
    return raw.decode("utf-8", "replace")


def nan_none(v: float | None) -> float | None:
    """A float for SQLite: NaN and inf become NULL."""
    return None if v is None or not np.isfinite(v) else float(v)


def none_nan(v: float | None) -> float:
    """A float from SQLite: NULL becomes NaN."""
    return float("nan") if v is None else float(v)
