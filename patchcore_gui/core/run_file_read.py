"""Reading a run file's image table in one pass, as columns (``RunFile.table`` / ``image_set``).

Every read of the ``images`` table walks all of it: each row holds its patch-score grid
(~1.6 kB at 28 x 28), so a 1,000,000-image run file is a 2 GB table and one walk costs
0.4-0.6 s on a 2-core machine before any Python object is made. The window therefore
reads everything it shows (paths, ground truth, scores, operator verdicts, errors) in a
single ``SELECT``, fetched in chunks, with small values packed into one integer per row
so that SQLite hands Python few objects; the columns become numpy arrays and the paths
one ``str`` each (``PathList``: no ``Path`` per image). No object made here survives per
row except the path strings, so the garbage collector has O(1) objects to track per image.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import ImageSet
from .path_list import OptionalPathList, PathList
from .run_file_format import RunFileError

#: Rows fetched per ``fetchmany``: bounds the transient row tuples (~100 MB at 1M rows otherwise).
CHUNK = 65_536

# done in bit 0, the operator's verdict (0 none, 1 OK, 2 NG) in bits 1-2, label + 1 (0 unknown, 1 good,
# 2 defect) from bit 3: one small (cached) int per row instead of three values. (SQLite's | and <<
# share one precedence level: every shift is in parentheses.)
_SELECT = (
    "SELECT path, (done != 0) | ((CASE verdict WHEN 'OK' THEN 1 WHEN 'NG' THEN 2 ELSE 0 END) << 1) | "
    "((label + 1) << 3), "
    "score, defect_type, mask_path, NULLIF(error, '') FROM images ORDER BY idx"
)


@dataclass(frozen=True, eq=False)
class RunTable:
    """A run file's images and results, in index order."""

    image_set: ImageSet
    #: bool per image: scored (errors included).
    done: np.ndarray
    #: float32 per image; NaN when not scored or failed.
    score: np.ndarray
    #: int8 per image: 0 no operator verdict, 1 OK, 2 NG (``run_file_format.OPERATOR_*``).
    operator: np.ndarray
    #: Error message per failed image index.
    errors: dict[int, str]


def decode_paths(blobs: Sequence[bytes]) -> list[str]:
    """``os.fsdecode`` of each path, done on one joined buffer (file paths hold no NUL byte)."""
    enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    if not blobs:
        return []
    out = b"\0".join(blobs).decode(enc, errors).split("\0")
    if len(out) != len(blobs):  # a NUL inside a stored path after all: one at a time
        out = [b.decode(enc, errors) for b in blobs]
    return out


def read_table(conn: sqlite3.Connection, meta: dict[str, Any]) -> RunTable:
    """Read the ``images`` table of an open run file in one pass (the caller holds its lock).

    The garbage collector is paused meanwhile: the row tuples SQLite hands over are tracked
    objects, and the collections they set off each walk the growing path list (2.0 s with it
    paused, 5.1-5.8 s without, at 1,000,000 rows). Nothing made here forms a cycle.
    """
    with gc_paused():
        return _read_table(conn, meta)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off for the block (reads of many rows; nesting is harmless:
    only the outermost block turns it back on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_table(conn: sqlite3.Connection, meta: dict[str, Any]) -> RunTable:
    # Two subqueries: SQLite answers MIN or MAX alone from the b-tree's ends, both in one
    # SELECT with a scan (0.9 s at 1,000,000 rows).
    lo, hi = conn.execute("SELECT (SELECT MIN(idx) FROM images), (SELECT MAX(idx) FROM images)").fetchone()
    paths: list[str] = []
    masks: list[str | None] = []
    types: list[str] = []
    canon: dict[str, str] = {}  # one str object per distinct defect type, shared by its rows
    packed: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    errors: dict[int, str] = {}
    any_mask = False
    cur = conn.execute(_SELECT)
    try:
        while rows := cur.fetchmany(CHUNK):
            start = len(paths)
            path_col, pack_col, score_col, type_col, mask_col, err_col = zip(*rows, strict=True)
            del rows
            paths += decode_paths(path_col)
            packed.append(np.array(pack_col, dtype=np.int16))
            scores.append(np.array(score_col, dtype=np.float64))  # None (not scored) -> NaN
            types += map(canon.setdefault, type_col, type_col)
            # tuple.count and map run in C: a Python expression per row cost ~0.1 s per column.
            if mask_col.count(None) != len(mask_col):
                any_mask = True
                masks += [None if m is None else decode_paths((m,))[0] for m in mask_col]
            else:
                masks += mask_col
            if err_col.count(None) != len(err_col):
                failed = list(map(is_not, err_col, repeat(None)))
                at = compress(range(start, start + len(err_col)), failed)
                errors.update(zip(at, compress(err_col, failed), strict=True))
    finally:
        cur.close()
    n = len(paths)
    if n and (lo != 0 or hi != n - 1):
        raise RunFileError(f"image indices {lo}..{hi} for {n} images: the run file is damaged")
    pack = np.concatenate(packed) if packed else np.empty(0, dtype=np.int16)
    image_set = ImageSet(
        root=Path(meta.get("folder", "")),
        paths=PathList(paths),
        labels=((pack >> 3) - 1).astype(np.int8),
        mask_paths=OptionalPathList(masks) if any_mask else masks,  # type: ignore[arg-type]
        defect_types=types,
        layout=str(meta.get("layout", "folder")),
    )
    score = (np.concatenate(scores) if scores else np.empty(0)).astype(np.float32)
    return RunTable(image_set=image_set, done=(pack & 1) != 0, score=score,
                    operator=((pack >> 1) & 3).astype(np.int8), errors=errors)
