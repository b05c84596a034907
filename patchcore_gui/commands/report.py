"""``patchcore report RUN --output PATH``: an HTML, PDF or CSV report of a run file.

The format follows PATH's extension (.html, .pdf, .csv). Exit 0 on success; 2 with one
line on stderr for an unknown extension, an unreadable run file, or a failed write
(which leaves no partial file).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any


def _threshold(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


def register(subparsers: Any) -> None:
    """Add the ``report`` sub-command to ``patchcore``'s sub-parsers."""
    p = subparsers.add_parser("report", help="write an HTML, PDF or CSV report of a run file")
    p.add_argument("run", help="run file (from 'patchcore predict --run FILE' or the GUI)")
    p.add_argument("--output", "-o", required=True, help="report file: .html, .pdf or .csv")
    p.add_argument("--all", action="store_true", dest="include_all", help="every image, not only the NG ones")
    p.add_argument("--operator", default="", help="operator name printed on the report")
    p.add_argument("--threshold", type=_threshold, default=None,
                   help="image threshold for this report (default: the run's)")
    p.add_argument("--model", default=None, help="the run's model file if it was moved (must be the same file)")
    p.add_argument("--evidence", action="store_true",
                   help="HTML/PDF: add each NG image's nearest normal patch (see 'patchcore explain')")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Write the report; returns the exit code."""
    from ..reports.report import ReportError, report_format, write_report

    try:
        report_format(args.output)
    except ReportError as exc:
        print(f"patchcore: error: {exc}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="report", unit="img", disable=args.quiet, file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        result = write_report(args.run, args.output, include_all=args.include_all, operator=args.operator,
                              threshold=args.threshold, model_path=args.model, progress=progress,
                              evidence=args.evidence)
    except ReportError as exc:
        print(f"patchcore: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if result.note:
        print(result.note, file=sys.stderr)
    print(f"wrote {result.format.upper()} report of {result.images} images -> {result.path}", file=sys.stderr)
    return 0
