"""``patchcore demo``: build the embedded demo data set and model, then predict its test folder."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import predict


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    demo = subparsers.add_parser("demo", help="build the embedded demo data set and model, then predict its test folder")
    demo.add_argument("--rebuild", action="store_true", help="rebuild the cached demo model")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Build (or reuse) the demo, then ``predict`` its folder to standard output."""
    from ..core.demo import ensure_demo

    model_path, folder = ensure_demo(rebuild=args.rebuild, log=lambda m: print(m, file=sys.stderr))
    ns = argparse.Namespace(model=str(model_path), images=str(folder), output=None, maps_out=None,
                            device="auto", batch_size=8, num_workers=0, quiet=args.quiet)
    return predict.handler(ns)
