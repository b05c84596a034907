"""``patchcore train --images DIR --output MODEL``: a model from a folder of good images."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    EXIT_OK,
    CliError,
    device_options,
    fmt,
    fraction,
    non_negative_int,
    positive_int,
    progress_bar,
)


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    from ..core.backbones import BACKBONES

    t = subparsers.add_parser("train", help="train a model from a folder of good images")
    t.add_argument("--images", required=True, help="folder of good images (MVTec class root: uses train/good)")
    t.add_argument("--output", required=True, help="model file to write (.patchcore)")
    t.add_argument("--backbone", default="wide_resnet50_2", choices=sorted(BACKBONES))
    t.add_argument("--weights", default=None, help="backbone state-dict file (else the torch hub cache)")
    t.add_argument("--layers", nargs="+", default=None, help="backbone layers (default: the backbone's)")
    t.add_argument("--resize", type=non_negative_int, default=256)
    t.add_argument("--crop", type=crop_value, default=224, metavar="PX|none",
                   help="side of the centre crop (default 224); none: the whole image resized to "
                        "--resize x --resize (aspect not kept), nothing cut off")
    t.add_argument("--coreset", type=float, default=0.1, help="fraction of patches kept (1.0 keeps all)")
    t.add_argument("--k", type=positive_int, default=1, help="nearest neighbours averaged per patch")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--false-reject", type=open_rate, default=0.01, metavar="RATE",
                   help="share of good parts the default thresholds reject, estimated from every training "
                        "image's out-of-bank score (default 0.01)")
    t.add_argument("--holdout", type=fraction, default=None,
                   help="retired: every training image is now scored without its own bank rows; "
                        "0 still turns calibration off, other values change nothing")
    t.add_argument("--embedding", choices=["reference", "native"], default=None,
                   help="patch-feature layout (default: reference; native for efficientnet_lite0)")
    t.add_argument("--reweight", type=non_negative_int, default=0,
                   help="paper Eq. 7 image-score re-weighting with N bank neighbours (anomalib: 9; default 0 = off, as the reference)")
    t.add_argument("--bn-warmup", choices=["official", "none"], default="official",
                   help="BatchNorm warm-up before feature extraction: official (one train-mode forward of ones, "
                        "as patchcore-inspection; default) or none")
    device_options(t)
    t.set_defaults(func=handler)


def crop_value(text: str) -> int | str:
    """``--crop``: a side in pixels, or "none" (the whole image)."""
    if text.strip().lower() == "none":
        return "none"
    return positive_int(text)


def open_rate(text: str) -> float:
    """argparse type: a rate strictly between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {text}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return v


def handler(args: argparse.Namespace) -> int:
    """Train, save the model file and print a one-line summary."""
    from ..core.datasets import mvtec_train_paths
    from ..core.engine import TrainConfig, train_model

    paths = mvtec_train_paths(args.images)
    if not paths:
        raise CliError(f"no images found in {args.images}")
    cfg = TrainConfig(
        backbone=args.backbone, layers=tuple(args.layers) if args.layers else None, embedding=args.embedding,
        resize=args.resize, crop=args.resize if args.crop == "none" else args.crop,
        crop_mode="none" if args.crop == "none" else "center", coreset=args.coreset, k=args.k, seed=args.seed,
        holdout=args.holdout, false_reject=args.false_reject, reweight=args.reweight, precision=args.precision, bn_warmup=args.bn_warmup,
    )
    if args.holdout:  # 0 and absent are fine; a fraction no longer means anything
        print("note: --holdout is retired: every training image is scored against the bank without its own "
              "rows; the fraction is ignored (--holdout 0 still turns calibration off)", file=sys.stderr)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = progress_bar(stage, total, args.quiet)
        bar.update(done - bar.n)

    t0 = time.perf_counter()
    try:
        model = train_model(
            paths, cfg, weights=args.weights, device=args.device, batch_size=args.batch_size or 8,
            num_workers=args.num_workers or 0, progress=progress, source=str(Path(args.images).resolve()),
        )
    finally:
        for bar in bars.values():
            bar.close()
    model.save(args.output)
    s = model.summary()
    print(
        f"trained {s['backbone']} on {s['training_images']} images in {time.perf_counter() - t0:.1f} s: "
        f"bank {s['bank_rows']} x {s['feature_dim']}, image threshold {fmt(s['image_threshold']) or 'none'} -> {args.output}"
    )
    print(f"thresholds: {s['threshold_rule']}")
    skipped = model.metadata["training"]["skipped"]
    if skipped:  # never silently: how many, then which
        found = len(skipped) + int(s["training_images"])
        print(f"skipped {len(skipped)} of {found} images (unreadable):", file=sys.stderr)
    for item in skipped:
        print(f"skipped {item['path']}: {item['error']}", file=sys.stderr)
    return EXIT_OK
