"""The run file: every prediction run persisted in one SQLite file (standard ``sqlite3``).

A run file holds what a quality record needs to be reproduced and reviewed: the model
file's path, SHA-256, summary and metadata; the image folder; the settings (device,
batch size, workers); the thresholds and every change made to them; the software
versions; the run status; and per image its path, file size and mtime, score,
float16 patch-score grid, error, ground truth and the operator's verdict.

API (Qt-free; the CLI and the GUI's worker share it)::

    store = RunFile.create(path, model, image_set, {"device": "cpu", "batch_size": 8,
                                                     "num_workers": 0})
    store.add_batch(batch_result)          # one transaction per engine BatchResult
    store.done_indices()                   # int64 indices already scored
    cols = store.columns()                 # numpy columns: index, done, score, error, label, operator
    store.paths(); store.grid(i)           # str paths (non-UTF-8 safe), float16 (h, w) grid or None
    store.set_threshold(12.5, note="line 3 tuning")    # logged: old, new, time, note
    store.threshold_log()                  # list of ThresholdChange
    store.set_operator_verdict(i, "NG", operator="ana")
    store.set_status("finished")
    store.image_set()                      # the ImageSet to resume with (same indices; paths a PathList)
    store.table()                          # images, scores, verdicts, errors in one pass (the window's open)
    store.close()                          # or use it as a context manager

    RunFile.open(path)                    # for writing: takes the writer lock
    RunFile.open(path, readonly=True)     # any number of readers, beside a writer

    predict_into_run(model, image_set, path, batch_size=8)       # new run
    predict_into_run(model, None, path, resume=True)             # continue it

Concurrency: SQLite in WAL mode with a busy timeout; every write is one transaction,
so a crash loses at most the batch in flight. One writer at a time: a writer records
itself in the ``lock`` table (pid, host, process start time, token) and a second writer
gets :class:`RunLockedError` ("run file is open for writing in another window/process").
A lock left by a dead process on this host is taken over. Readers never lock. The
methods of one ``RunFile`` are serialised by an internal lock, so a worker thread may
add batches while the GUI thread sets verdicts.

Resume: the engine batches the remaining images in order, and completed batches are
whole, so resuming with the run's own batch size (stored in its settings) reproduces the
batches, and the scores, of an uninterrupted run.

Test hook: when the environment variable ``PATCHCORE_GUI_TEST_BATCH_DELAY`` holds a
number of seconds, :func:`predict_into_run` sleeps that long after each committed batch
(used by the kill-and-resume test to make a run slow enough to interrupt).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from . import run_file_lock
from .datasets import ImageSet
from .precision import recorded_precision
from .results import BatchResult
from .run_file_create import write_new_run_file
from .run_file_format import (
    APPLICATION_ID,
    FORMAT_NAME,
    FORMAT_VERSION,
    OPERATOR_NG,
    OPERATOR_NONE,
    OPERATOR_OK,
    STATUSES,
    TEST_DELAY_ENV,
    VERDICTS,
    ModelChangedError,
    RunFileError,
    RunLockedError,
    ThresholdChange,
    file_sha256,
    now_iso,
)
from .run_file_read import RunTable, decode_paths, read_table
from .run_file_review import RunFileReview

if TYPE_CHECKING:
    from .model import PatchCoreModel

# Re-exported: callers import the format's names from here.
__all__ = [
    "APPLICATION_ID", "FORMAT_NAME", "FORMAT_VERSION", "OPERATOR_NG", "OPERATOR_NONE", "OPERATOR_OK",
    "STATUSES", "TEST_DELAY_ENV", "VERDICTS", "ModelChangedError", "RunFile", "RunFileError",
    "RunLockedError", "ThresholdChange", "file_sha256", "now_iso",
]


class RunFile(RunFileReview):
    """One open run file. Create with :meth:`create`, open with :meth:`open`.

    Thresholds, their log and operator verdicts: ``RunFileReview`` (core/run_file_review.py).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._conn = conn
        self._mutex = threading.RLock()
        self._token = ""
        self._meta: dict[str, Any] = {}
        self._reload_meta()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        model: PatchCoreModel,
        image_set: ImageSet,
        settings: dict[str, Any],
        *,
        model_sha256: str | None = None,
    ) -> RunFile:
        """Write a new run file for ``image_set`` and open it for writing (status "running").

        ``settings`` holds at least ``batch_size`` (resume needs it), ``device`` and
        ``num_workers``, and ``precision`` (stored as its resolved name: exact, fast or
        half). The model file's hash is computed unless given. Refuses to overwrite an
        existing file.
        """
        write_new_run_file(Path(path), model, image_set, settings, model_sha256)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool = False, *, break_lock: bool = False) -> RunFile:
        """Open a run file; for writing unless ``readonly``.

        Raises:
            RunLockedError: another live window/process has it open for writing
                (``break_lock=True`` takes the lock anyway, e.g. after a crash on another host).
            RunFileError: the file is missing or not a run file.
        """
        p = Path(path)
        if not p.is_file():
            raise RunFileError(f"run file not found: {p}")
        try:
            if readonly:
                where = os.fsencode(p.resolve().as_posix())
                uri = ("file:///" + quote(where, safe="/:") if os.name == "nt" else "file:" + quote(where)) + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(os.fspath(p), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise RunFileError(f"{p.name}: not a run file ({exc})") from None
        if app_id != APPLICATION_ID:
            conn.close()
            raise RunFileError(f"{p.name}: not a PatchCore Inspector run file")
        store = cls(p, conn, readonly)
        version = store._meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            conn.close()
            raise RunFileError(f"{p.name}: run file format {version} is newer than this version reads")
        if not readonly:
            try:
                store._acquire_lock(break_lock)
            except BaseException:
                conn.close()
                raise
        return store

    @property
    def interrupted(self) -> bool:
        """True when the run says "running" but no live writer holds it (crash, kill): resume it."""
        with self._mutex:
            row = run_file_lock.lock_row(self._conn)
        return self.status == "running" and not (row and run_file_lock.holder_alive(row))

    def _acquire_lock(self, break_lock: bool) -> None:
        self._token = run_file_lock.acquire(self._conn, self.path.name, break_lock)
        # A RunFile dropped without close() must not keep refusing writers in this process.
        weakref.finalize(self, run_file_lock.HELD.discard, self._token)

    def close(self) -> None:
        """Release the writer lock (if held) and close the file. Safe to call twice."""
        with self._mutex:
            if self._conn is None:
                return
            try:
                if self._token:
                    with self._write():
                        self._conn.execute("DELETE FROM lock WHERE token = ?", (self._token,))
                    # At rest a run file is one file (no -wal/-shm beside it), easy to copy
                    # and readable from a read-only folder. Fails harmlessly while a reader
                    # still has it open; the next writer switches WAL back on.
                    with contextlib.suppress(sqlite3.DatabaseError):
                        self._conn.execute("PRAGMA journal_mode = DELETE")
            finally:
                run_file_lock.HELD.discard(self._token)
                self._token = ""
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> RunFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    def _write(self) -> run_file_lock.Transaction:
        if self.readonly:
            raise RunFileError(f"run file {self.path.name} is open read-only")
        if self._conn is None:
            raise RunFileError("run file is closed")
        return run_file_lock.Transaction(self._conn, self._mutex)

    def _set_meta(self, **values: Any) -> None:
        """Inside a transaction: update meta keys (and the cached copy)."""
        values.setdefault("updated", now_iso())
        self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in values.items()])
        self._meta.update(values)

    def _reload_meta(self) -> None:
        with self._mutex:
            try:
                rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
            except sqlite3.DatabaseError as exc:
                raise RunFileError(f"{self.path.name}: not a run file ({exc})") from None
            self._meta = {k: json.loads(v) for k, v in rows}

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            if self._conn is None:
                raise RunFileError("run file is closed")
            return self._conn.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ run facts
    @property
    def meta(self) -> dict[str, Any]:
        """All run-level facts (a copy): model_path, model_sha256, model_summary,
        model_metadata, folder, layout, settings, thresholds, software, status, sessions..."""
        self._reload_meta()
        return dict(self._meta)

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings; an old file's precision "fp32" / "bf16" reads as exact / fast."""
        st = dict(self._meta.get("settings", {}))
        if recorded_precision(st.get("precision")):
            st["precision"] = recorded_precision(st["precision"])
        return st

    @property
    def status(self) -> str:
        self._reload_meta()
        return str(self._meta.get("status", ""))

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM images")[0][0])

    def set_status(self, status: str, message: str = "") -> None:
        """Record the run's status: running, finished, cancelled or failed (+ one-line reason)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {STATUSES}")
        with self._write():
            self._set_meta(status=status, status_message=message)

    def add_session(self, **info: Any) -> None:
        """Append a (resume) session record: time, pid, host, device..."""
        with self._write():
            sessions = list(self._meta.get("sessions", []))
            sessions.append({"time": now_iso(), "pid": os.getpid(), "host": socket.gethostname(), **info})
            self._set_meta(sessions=sessions, status="running", status_message="")

    def set_drift(self, record: dict[str, Any]) -> None:
        """Record the run's drift check (``core.drift.DriftResult.to_json()``; older files lack it)."""
        with self._write():
            self._set_meta(drift=dict(record))

    # ------------------------------------------------------------------ results
    def add_batch(self, result: BatchResult) -> None:
        """Store one engine batch in one transaction (scores, float16 grids, errors, file stats)."""
        rows = []
        for j, i in enumerate(result.indices.tolist()):
            try:
                st = os.stat(result.paths[j])
                size, mtime = int(st.st_size), int(st.st_mtime_ns)
            except OSError:
                size = mtime = None
            err = result.errors[j]
            score = float(result.scores[j])
            grid = None
            h = w = None
            if not err and np.isfinite(score):
                g = np.ascontiguousarray(result.grids[j], dtype="<f2")
                grid, (h, w) = g.tobytes(), g.shape
            rows.append((size, mtime, None if err or not np.isfinite(score) else score, grid, h, w, err, int(i)))
        with self._write():
            seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM batches").fetchone()[0]
            self._conn.executemany(
                f"UPDATE images SET done = 1, size = ?, mtime_ns = ?, score = ?, grid = ?, grid_h = ?, "
                f"grid_w = ?, error = ?, batch = {int(seq)} WHERE idx = ?",
                rows,
            )
            self._conn.execute("INSERT INTO batches VALUES (?, ?, ?)", (seq, now_iso(), len(rows)))
            self._conn.execute("UPDATE lock SET time = ? WHERE token = ?", (now_iso(), self._token))

    def done_indices(self) -> np.ndarray:
        """Indices of the images already scored (errors included), int64, ascending."""
        return np.array([r[0] for r in self._query("SELECT idx FROM images WHERE done = 1 ORDER BY idx")],
                        dtype=np.int64)

    def batch_count(self) -> int:
        """Number of committed batches."""
        return int(self._query("SELECT COUNT(*) FROM batches")[0][0])

    def columns(self) -> dict[str, np.ndarray]:
        """Per-image numpy columns in index order.

        index int64, done bool, score float32 (NaN when not done or error), error bool,
        label int8 (0 good, 1 defect, -1 unknown), operator int8 (0 none, 1 OK, 2 NG),
        size int64 and mtime_ns int64 (-1 when unknown).
        """
        rows = self._query(
            "SELECT idx, done, score, error != '', label, verdict, COALESCE(size, -1), COALESCE(mtime_ns, -1) "
            "FROM images ORDER BY idx"
        )
        n = len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        code = {"": OPERATOR_NONE, "OK": OPERATOR_OK, "NG": OPERATOR_NG}
        return {
            "index": np.fromiter(cols[0], dtype=np.int64, count=n),
            "done": np.fromiter(cols[1], dtype=bool, count=n),
            "score": np.array(cols[2], dtype=np.float64).astype(np.float32).reshape(n),  # None -> NaN
            "error": np.fromiter(cols[3], dtype=bool, count=n),
            "label": np.fromiter(cols[4], dtype=np.int8, count=n),
            "operator": np.fromiter((code.get(v, 0) for v in cols[5]), dtype=np.int8, count=n),
            "size": np.fromiter(cols[6], dtype=np.int64, count=n),
            "mtime_ns": np.fromiter(cols[7], dtype=np.int64, count=n),
        }

    def paths(self) -> list[str]:
        """Image paths as ``str`` (``os.fsdecode``: non-UTF-8 bytes survive as surrogates)."""
        rows = self._query("SELECT path FROM images ORDER BY idx")
        return decode_paths([r[0] for r in rows])

    def display_names(self) -> list[str]:
        """Image paths for display (undecodable bytes shown as U+FFFD)."""
        return [r[0] for r in self._query("SELECT display FROM images ORDER BY idx")]

    def errors(self) -> dict[int, str]:
        """Error message per failed image index."""
        return dict(self._query("SELECT idx, error FROM images WHERE error != '' ORDER BY idx"))  # type: ignore[arg-type]

    def defect_types(self) -> list[str]:
        return [r[0] for r in self._query("SELECT defect_type FROM images ORDER BY idx")]

    def grid(self, index: int) -> np.ndarray | None:
        """The float16 (h, w) patch-score grid of one image; None when not scored or failed."""
        rows = self._query("SELECT grid, grid_h, grid_w FROM images WHERE idx = ?", (int(index),))
        if not rows or rows[0][0] is None:
            return None
        blob, h, w = rows[0]
        return np.frombuffer(blob, dtype="<f2").reshape(h, w).astype(np.float16)

    def iter_grids(self, indices: Iterable[int], chunk: int = 256) -> Iterator[tuple[int, np.ndarray | None]]:
        """(index, float16 grid or None) for many images, fetched in chunks (bounded memory)."""
        idx = [int(i) for i in indices]
        for start in range(0, len(idx), chunk):
            part = idx[start : start + chunk]
            marks = ",".join("?" * len(part))
            got = {r[0]: r[1:] for r in self._query(
                f"SELECT idx, grid, grid_h, grid_w FROM images WHERE idx IN ({marks})", part)}
            for i in part:
                blob, h, w = got.get(i, (None, None, None))
                yield i, None if blob is None else np.frombuffer(blob, dtype="<f2").reshape(h, w).astype(np.float16)

    def image_set(self) -> ImageSet:
        """The run's images as an ``ImageSet`` in the stored order (indices match).

        Its ``paths`` is a ``PathList``: ``Path`` objects are made for the items asked for.
        """
        return self.table().image_set

    def table(self) -> RunTable:
        """Images, scores, operator verdicts and errors in one pass over the file (``run_file_read``)."""
        with self._mutex:
            if self._conn is None:
                raise RunFileError("run file is closed")
            return read_table(self._conn, self._meta)
