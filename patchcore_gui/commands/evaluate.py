"""``patchcore evaluate``: image AUROC, pixel AUROC, PRO and the F1 threshold on an MVTec-layout folder."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .common import EXIT_OK, CliError, device_options, json_safe, load_model, write_text_atomic
from .predict import score_images


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    ev = subparsers.add_parser("evaluate",
                               help="image AUROC, pixel AUROC, PRO and F1 threshold on an MVTec-layout folder")
    ev.add_argument("--model", required=True)
    ev.add_argument("--dataset", required=True, help="MVTec AD class folder (test/, ground_truth/)")
    ev.add_argument("--output", default=None, help="metrics JSON file to write")
    device_options(ev)
    ev.set_defaults(func=handler)


def _maps_and_masks(model: Any, test: Any, grids: np.ndarray, ok: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(crop, crop) maps and uint8 ground-truth masks of the images that scored."""
    import torch

    from ..io.images import load_image

    crop = model.config.crop
    maps, masks = [], []
    for i in np.flatnonzero(ok):
        maps.append(model.anomaly_maps(grids[i][None])[0])
        mp = test.mask_paths[i]
        if mp is not None:
            try:
                m = model.preprocess.mask(load_image(mp)).squeeze(0)
            except Exception:  # an unreadable mask only drops pixel metrics for one image
                m = torch.zeros(crop, crop)
        else:
            m = torch.zeros(crop, crop)
        masks.append(m.numpy().astype(np.uint8))
    return maps, masks


def evaluate_model(model: Any, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the model over an MVTec-layout test set and compute the metrics."""
    from ..core import metrics
    from ..core.datasets import mvtec_test_set

    test = mvtec_test_set(dataset)
    if not test.has_labels:
        raise CliError(f"{dataset} has no labelled test images")
    paths, scores, errors, grids = score_images(model, test, args)
    ok = np.isfinite(scores)
    labels = test.labels.astype(np.int64)
    maps, masks = _maps_and_masks(model, test, grids, ok)
    thr_f1, f1, prec, rec = metrics.f1_optimal_threshold(scores[ok], labels[ok])
    result = {
        "model": str(model.path) if model.path else "",
        "dataset": str(Path(dataset).resolve()),
        "images": int(len(paths)),
        "errors": int((~ok).sum()),
        "image_auroc": metrics.image_auroc(scores[ok], labels[ok]),
        "pixel_auroc": metrics.pixel_auroc(maps, masks) if maps else float("nan"),
        "pro": metrics.pro_score(maps, masks) if maps else float("nan"),
        "f1_threshold": thr_f1,
        "f1": f1,
        "precision_at_f1": prec,
        "recall_at_f1": rec,
        "model_threshold": model.image_threshold,
    }
    if math.isfinite(model.image_threshold):
        p, r, f = metrics.precision_recall_f1(scores[ok], labels[ok], model.image_threshold)
        result.update({"precision_at_model_threshold": p, "recall_at_model_threshold": r, "f1_at_model_threshold": f})
        if math.isfinite(model.review_from):  # the band leaves AUROC and the counts at the threshold as they are
            sent = metrics.review_counts(scores[ok], labels[ok], model.image_threshold, model.review_from)
            result.update({"review_from": model.review_from, "review_good": sent["good"],
                           "review_defect": sent["defect"]})
    return result


def handler(args: argparse.Namespace) -> int:
    """Evaluate and print the metrics as JSON (and write them with --output)."""
    model = load_model(args.model, args.device, args.precision)
    result = evaluate_model(model, args.dataset, args)
    text = json.dumps(json_safe(result), indent=2)
    if args.output:
        write_text_atomic(args.output, text + "\n")
    print(text)
    return EXIT_OK
