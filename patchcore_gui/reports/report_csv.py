"""The CSV report: one row per image of the run, whatever ``include_all`` says.

Columns: ``path, sha256, score, normalized_score, verdict, ground_truth, defect_type,
operator_verdict, operator, operator_time, error``. Scores carry 9 significant digits,
enough to give back the stored float32 exactly. Paths are written as the file system
names them (undecodable bytes pass through, as in ``patchcore predict``'s CSV). The
SHA-256 of each image file is computed now ("" when the file cannot be read).
"""

from __future__ import annotations

import csv
import io
import math
import threading
from typing import IO

from ..core.run_file import file_sha256
from .context import Progress, ReportCancelled, ReportContext

COLUMNS = ("path", "sha256", "score", "normalized_score", "verdict", "ground_truth", "defect_type",
           "operator_verdict", "operator", "operator_time", "error")


def _num(v: float) -> str:
    return f"{v:.9g}" if math.isfinite(v) else ""


def write_csv(ctx: ReportContext, fh: IO[bytes], *, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> int:
    """Write every image of ``ctx`` as CSV to the binary file ``fh``; returns the row count."""
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
    w = csv.writer(text, lineterminator="\n")
    w.writerow(COLUMNS)
    total = len(ctx.items)
    for n, it in enumerate(ctx.items, 1):
        if cancel is not None and cancel.is_set():
            raise ReportCancelled("report export cancelled")
        try:
            digest = file_sha256(it.path)
        except OSError:
            digest = ""
        truth = {0: "good"}.get(it.label, "defect" if it.label > 0 else "")
        w.writerow([it.path, digest, _num(it.score), _num(it.normalized), it.verdict, truth, it.defect_type,
                    it.operator, it.operator_by, it.operator_time, it.error])
        if progress is not None and (n % 256 == 0 or n == total):
            progress(n, total)
    text.flush()
    text.detach()  # leave fh open for the atomic writer to fsync and rename
    return total
