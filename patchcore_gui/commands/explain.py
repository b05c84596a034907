"""``patchcore explain --model M IMAGE [--at X Y] [--output evidence.png] [--json]``.

Why a patch of IMAGE scores what it does: its nearest normal patch (a place in a
training image, ``core/evidence.py``), the distance against the thresholds and the next
nearest training images. ``--at X Y`` picks the patch under original-image pixel (X, Y);
without it, the hottest patch. Text on standard output (JSON with ``--json``);
``--output`` writes the evidence picture (PNG, atomically).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK, CliError, load_model


def register(subparsers: Any) -> None:
    """Add the ``explain`` sub-command."""
    p = subparsers.add_parser("explain", help="show the nearest normal patch behind an image's score")
    p.add_argument("--model", required=True, help="model file")
    p.add_argument("image", help="image file")
    p.add_argument("--at", nargs=2, type=float, metavar=("X", "Y"), default=None,
                   help="explain the patch under this pixel of the original image (default: the hottest patch)")
    p.add_argument("--output", default=None, help="write the evidence picture to this .png")
    p.add_argument("--json", action="store_true", help="print the evidence as JSON")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Print (and optionally draw) the evidence; returns the exit code."""
    from ..core.evidence import EvidenceFinder
    from ..io.images import load_image
    from ..reports.report_evidence import caption_lines, evidence_png

    if args.output is not None and not args.output.lower().endswith(".png"):
        raise CliError(f"--output must be a .png file, got {args.output}")
    model = load_model(args.model, args.device)
    img = load_image(args.image)
    if args.at is not None:
        x, y = args.at
        if not (0 <= x < img.width and 0 <= y < img.height):
            raise CliError(f"--at {x:g} {y:g} is outside the image ({img.width} x {img.height} px)")
    finder = EvidenceFinder(model)
    ev = finder.explain(img, at=tuple(args.at) if args.at is not None else None)
    ev = _named(ev, args.image)
    if args.output is not None:
        from ..core.atomic import atomic_write_bytes

        atomic_write_bytes(args.output, evidence_png(ev, finder, img))
    if args.json:
        print(json.dumps(ev.to_json(), indent=2, sort_keys=True))
    else:
        print("\n".join(caption_lines(ev)))
    return EXIT_OK


def _named(ev: Any, path: str) -> Any:
    """``ev`` with the image's path (explain loads the image itself so --at can be checked)."""
    from dataclasses import replace

    return replace(ev, image=path)
