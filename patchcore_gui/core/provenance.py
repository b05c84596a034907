"""Where every memory-bank row came from: the training file list and each row's source patch.

Training records, for each readable training image, its path (relative to the training
folder when it lies under it) and the SHA-256 of its bytes, and for each bank row the
image index and the patch's row-major position in the feature grid. Evidence ("this
patch is far from that place in that good image") and teaching build on it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Read size for hashing: large enough to be fast, small enough to stream big images.
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def relative_to_source(path: str | os.PathLike[str], source: str | os.PathLike[str] | None) -> str:
    """``path`` relative to the training folder ``source`` (POSIX separators) when it lies under
    it, else the path as given (a file list trained from scattered paths keeps them whole)."""
    given = os.fspath(path)
    if not source:
        return given
    try:
        rel = Path(given).resolve().relative_to(Path(source).resolve())
    except (ValueError, OSError):
        return given
    return rel.as_posix()


def training_file_records(paths: Sequence[str | os.PathLike[str]],
                          source: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """[{"path", "sha256"}] for each path, in order (index i is bank_source's image i)."""
    return [{"path": relative_to_source(p, source), "sha256": file_sha256(p)} for p in paths]


def bank_source_from_selection(selected: np.ndarray | Sequence[int], per_image: int) -> np.ndarray:
    """(rows, 2) int32 [image index, patch index] of coreset picks into the flat
    (n_images * per_image) feature matrix, whose rows are ordered (image, y, x)."""
    sel = np.asarray(selected, dtype=np.int64)
    return np.stack([sel // per_image, sel % per_image], axis=1).astype(np.int32)


def provenance_note(metadata: dict[str, Any], has_bank_source: bool) -> str:
    """One line for ``info`` and the model card: is the bank's provenance recorded?"""
    files = metadata.get("training", {}).get("files")
    if has_bank_source and files:
        return f"recorded: {len(files):,} training files (SHA-256) and each bank row's image and patch"
    if files:
        return f"training files recorded ({len(files):,}, SHA-256); bank rows' sources not recorded"
    return "not recorded (model made before provenance, or imported): evidence unavailable"
