"""Inspection reports from a run file: HTML, PDF or CSV, written atomically.

API (Qt-free; the CLI's ``patchcore report`` and the GUI's export action share it)::

    from patchcore_gui.reports.report import write_report
    result = write_report("run.sqlite", "report.pdf", include_all=False, operator="Ana",
                          threshold=None, progress=None, cancel=None)
    result.images, result.note      # images shown; why heatmaps are missing ("" if shown)

* The format follows the output's extension: ``.html``/``.htm``, ``.pdf``, ``.csv``;
  anything else is a :class:`ReportError`.
* HTML and PDF hold the NG images only, or every image with ``include_all``; CSV always
  has every image (path, SHA-256 of the file, raw and normalised score, verdict,
  ground truth, operator verdict).
* ``threshold`` overrides the run's threshold for this report (and says so in it).
* Heatmaps are rebuilt from the run's float16 grids with the run's model file
  (``model.anomaly_maps`` then resampled through the model's crop and resize); when that
  file is missing or changed (SHA-256), the report shows original thumbnails only and
  says why. ``model_path`` points at a moved copy of the same file.
* Writing goes to a temporary file in the output's folder, renamed into place at the
  end: a failure (disk full, no permission, cancelled) leaves no partial file and raises
  :class:`ReportError` with one line. The input run file is only read (read-only open),
  so a report can be made while the GUI still has the run open.

:func:`~patchcore_gui.reports.context.build_context` gathers the facts
(``ReportContext``) that the writers in ``report_html``, ``report_pdf`` and
``report_csv`` lay out; ``reports/thumbnails.py`` streams the per-image thumbnails in
chunks so memory stays bounded for big runs. Nothing in ``reports/`` imports this
module back: context <- thumbnails <- writers <- report.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_output
from ..core.run_file import RunFile, RunFileError
from .context import Progress, ReportCancelled, ReportError, build_context
from .report_csv import write_csv
from .report_html import write_html
from .report_pdf import write_pdf

FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".csv": "csv"}
# Re-exported for callers that catch a report's errors where they call write_report.
__all__ = ["FORMATS", "ReportCancelled", "ReportError", "ReportResult", "report_format", "write_report"]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote."""

    path: Path
    format: str
    images: int
    note: str


def report_format(output: str | os.PathLike[str]) -> str:
    """'html', 'pdf' or 'csv' from the output's extension; ReportError otherwise."""
    ext = Path(output).suffix.lower()
    if ext not in FORMATS:
        raise ReportError(f"unknown report format {ext or '(no extension)'!r} for {Path(output).name}; "
                          "use .html, .pdf or .csv")
    return FORMATS[ext]


def write_report(
    run: str | os.PathLike[str] | RunFile,
    output: str | os.PathLike[str],
    *,
    include_all: bool = False,
    operator: str = "",
    threshold: float | None = None,
    model_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    threshold_given_by: str = "--threshold",
    evidence: bool = False,
) -> ReportResult:
    """Write a report of ``run`` to ``output`` (format from its extension), atomically.

    ``threshold_given_by``: where a given ``threshold`` came from, as the report says it.
    ``evidence``: HTML and PDF add the nearest-normal evidence of each NG image (``report_evidence``).
    """
    fmt = report_format(output)
    out = Path(output)
    if not out.parent.is_dir():
        raise ReportError(f"cannot write {out.name}: folder {out.parent} does not exist")
    try:
        ctx = build_context(run, include_all=include_all, operator=operator, threshold=threshold,
                            model_path=model_path, need_maps=fmt != "csv", threshold_given_by=threshold_given_by)
    except RunFileError as exc:
        raise ReportError(str(exc)) from None
    ctx.evidence = evidence
    try:
        with atomic_output(out) as fh:
            if fmt == "csv":
                n = write_csv(ctx, fh, progress=progress, cancel=cancel)
            elif fmt == "html":
                n = write_html(ctx, fh, progress=progress, cancel=cancel)
            else:
                n = write_pdf(ctx, fh, progress=progress, cancel=cancel)
    except ReportError:
        raise
    except OSError as exc:
        raise ReportError(f"cannot write {out.name}: {exc.strerror or exc}") from None
    finally:
        if ctx.store is not None and not isinstance(run, RunFile):
            ctx.store.close()
    return ReportResult(out, fmt, n, ctx.maps_note)
