"""What ``patchcore predict`` writes: the results CSV and the ``--maps-out`` .npz.

Both are a contract (scripts read them): the CSV's columns are
``path,score,normalized_score,verdict,error`` (verdict OK, REVIEW or NG by
``core/verdict.py``; empty for an image that could not be scored and without a
threshold); the .npz holds ``paths`` (str) and ``maps`` (float32, N x crop x crop).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence

import numpy as np

from ..core.atomic import atomic_output
from ..core.verdict import verdict


def _fmt(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def csv_verdict(score: float, threshold: float, review_from: float = float("nan")) -> str:
    """The CSV's verdict cell: OK, REVIEW or NG; "" for an unscored image (its error
    column says why) and without a threshold. ``review_from`` NaN: no band."""
    return verdict(score, threshold, review_from)


def results_csv(paths: Sequence[str], scores: np.ndarray, errors: Sequence[str], threshold: float,
                review_from: float = float("nan")) -> str:
    """The predict CSV: path,score,normalized_score,verdict,error (``review_from``: the band's start)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "score", "normalized_score", "verdict", "error"])
    for p, s, e in zip(paths, scores, errors, strict=True):
        s = float(s)
        norm = s / threshold if math.isfinite(threshold) and threshold > 0 and math.isfinite(s) else float("nan")
        w.writerow([p, _fmt(s), _fmt(norm), csv_verdict(s, threshold, review_from), e])
    return buf.getvalue()


def write_maps_npz(path: str | os.PathLike[str], paths: Sequence[str], maps_iter: Iterable[np.ndarray],
                   n: int, size: int) -> None:
    """Stream maps into an .npz (``paths``, ``maps`` float32 (n, size, size)) without holding them all.

    Written through ``core.atomic.atomic_output`` (temporary file, fsync, rename), so a
    failure leaves no partial file and a crash no empty one.
    """
    import zipfile

    with atomic_output(path) as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED,
                                                     allowZip64=True) as zf:
        with zf.open("paths.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.array(list(paths), dtype=str), allow_pickle=False)
        with zf.open("maps.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_2_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                     "shape": (n, size, size)}
            )
            written = 0
            for m in maps_iter:
                fh.write(np.ascontiguousarray(m, dtype="<f4").tobytes())
                written += 1
            if written != n:
                raise RuntimeError(f"wrote {written} maps, expected {n}")
