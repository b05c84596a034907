"""``patchcore import-official``: convert a patchcore-inspection model to this format.

The official model's settings are a Python pickle. Reading one is only done after the
user says ``--trust-pickle``, and even then through the restricted loader of
``core.official_import`` (plain values only, nothing imported or called).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..core.official_import import INDEX_FILE, PARAMS_FILE


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def refusal_message(src: str) -> str:
    """The one-line explanation given when ``--trust-pickle`` is missing."""
    return (
        f"refusing to read {src}/{PARAMS_FILE} without --trust-pickle: the official model stores its "
        "settings as a Python pickle, and loading a pickle can run any code its author chose; "
        "if the model comes from a source you trust, run again with --trust-pickle (the file is then "
        "read with a restricted loader that accepts plain values only, and the result is saved in "
        "this tool's pickle-free format)"
    )


def register(subparsers: Any) -> None:
    """Add the ``import-official`` sub-command to ``patchcore``'s parser."""
    p = subparsers.add_parser(
        "import-official",
        help="convert an official patchcore-inspection model folder to a .patchcore file",
        description=(
            f"Convert a patchcore-inspection model folder ({PARAMS_FILE} + {INDEX_FILE}) into this "
            "tool's model format. The settings file is a pickle: pass --trust-pickle to allow reading it."
        ),
    )
    p.add_argument("src", metavar="SRC_DIR", help=f"folder holding {PARAMS_FILE} and {INDEX_FILE}")
    p.add_argument("--output", required=True, help="model file to write (.patchcore)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow reading the pickled settings (restricted to plain values)")
    p.add_argument("--weights", default=None,
                   help="backbone state-dict file (the reference downloads ImageNet weights; default: torch hub cache)")
    p.add_argument("--resize", type=_positive_int, default=None,
                   help="shorter-side resize (not saved by the reference; default 256 for crop 224, 366 for 320)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler: refuse without consent, else import, save atomically and summarise."""
    from ..core.official_import import import_official
    from .common import CliError

    if not args.trust_pickle:
        # Checked before the folder is even looked at: no byte of the pickle is read.
        raise CliError(refusal_message(args.src))
    t0 = time.perf_counter()
    model = import_official(args.src, weights=args.weights, resize=args.resize, device=args.device)
    model.save(args.output)
    s = model.summary()
    print(
        f"imported {model.metadata['imported_from'].get('backbone.name')} as {s['backbone']} "
        f"({', '.join(s['layers'])}) in {time.perf_counter() - t0:.1f} s: bank {s['bank_rows']} x "
        f"{s['feature_dim']}, k {s['k']}, resize {s['resize']} -> crop {s['crop']}, "
        f"no threshold (the official format stores none) -> {args.output}"
    )
    print("set an image threshold before using NG/OK verdicts", file=sys.stderr)
    return 0
