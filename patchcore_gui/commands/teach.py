"""``patchcore teach MODEL --good IMAGE... --output NEW [--note TEXT] [--images DIR] [--force]``.

Teach images reviewed as OK into a **new** model file (``core/teach.py``): the parent
is never modified; ``--output`` never overwrites an existing file without ``--force``
(and never the parent itself); an image that cannot be read is refused by name and
nothing is written. With ``--images DIR`` the folder is re-scored with both models and
every verdict that flips is printed (OK -> NG, NG -> OK, with ground truth where the
folder's layout gives it) before the new file is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, load_model


def register(subparsers: Any) -> None:
    """Add the ``teach`` sub-command."""
    p = subparsers.add_parser("teach", help="teach images reviewed as OK into a new model file")
    p.add_argument("model", help="parent model file (never modified)")
    p.add_argument("--good", nargs="+", required=True, metavar="IMAGE", help="images reviewed as OK")
    p.add_argument("--output", required=True, help="the new model file")
    p.add_argument("--note", default="", help="why (recorded in the new file's history)")
    p.add_argument("--user", default=None, help="who (default: the login name)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="re-score this folder with both models and print the verdicts that flip")
    p.add_argument("--keep-thresholds", action="store_true",
                   help="keep the parent's thresholds (default: re-derive them from the extended calibration)")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Teach, print the summary (and the flips), write the new file; returns the exit code."""
    from ..core.teach import flips, teach

    out = Path(args.output)
    if out.exists() and out.resolve() == Path(args.model).resolve():
        raise CliError("--output is the parent model file; the parent is never modified")
    if out.exists() and not args.force:
        raise CliError(f"{out.name} exists; use --force to overwrite it")
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out.name}: folder {out.parent} does not exist")
    missing = [g for g in args.good if not os.path.isfile(g)]
    if missing:
        raise CliError("cannot teach: not found: " + ", ".join(Path(g).name for g in missing)
                       + " (nothing was written)")
    parent = load_model(args.model, args.device)
    child, report = teach(parent, args.good, note=args.note, user=args.user, keep_thresholds=args.keep_thresholds)
    print("\n".join(report.lines()))
    if args.images:
        from ..core.datasets import scan_folder

        changed, old, _new = flips(parent, child, scan_folder(args.images))
        print(f"re-scored {len(old)} image(s) in {args.images}: {len(changed)} verdict(s) flip")
        for f in changed:
            truth = f" (truth: {f.truth})" if f.truth else ""
            print(f"  {f.old_verdict or '-'} -> {f.new_verdict or '-'}  {f.old_score:.6g} -> {f.new_score:.6g}  "
                  f"{f.path}{truth}")
    child.save(out)
    print(f"wrote {out} (parent {Path(args.model).name} unchanged)", file=sys.stderr)
    return EXIT_OK
