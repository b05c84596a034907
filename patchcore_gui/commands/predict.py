"""``patchcore predict``: score every image in a folder; CSV out, optional maps and run file.

Without ``--run`` the images are scored in memory. With ``--run FILE`` the run is
recorded batch by batch in a run file (``core/run_driver.py``), with the ground truth
the folder's layout gives, and ``--resume`` continues an interrupted one; the results
are then read back from the run file. The CSV and the ``--maps-out`` .npz come from
``reports/predict_output.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    EXIT_OK,
    CliError,
    device_options,
    fmt,
    load_model,
    progress_bar,
    write_stdout,
    write_text_atomic,
)
from .predict_ray import (
    add_engine_options,
    check_engine_options,
    driver_model_args,
    engine_kwargs,
    is_ray,
    list_images_for,
)


def register(subparsers: Any) -> None:
    """Add the ``predict`` sub-command."""
    pr = subparsers.add_parser("predict", help="score every image in a folder")
    pr.add_argument("--model", default=None, help="model file (required unless --resume)")
    pr.add_argument("--images", default=None, help="folder of images (recursive), or a URI pyarrow reads (s3://, gs://, hdfs://, file://...); required unless --resume")
    pr.add_argument("--output", default=None, help="CSV file to write (default: standard output)")
    pr.add_argument("--maps-out", default=None, help=".npz with paths and (N, crop, crop) float32 maps")
    pr.add_argument("--run", default=None, metavar="FILE",
                    help="record the run in this run file (SQLite: scores, grids, settings, status)")
    pr.add_argument("--resume", action="store_true",
                    help="continue the run file given with --run; model, folder and batch size come from it")
    device_options(pr)
    add_engine_options(pr)
    # None = not given: a resumed run then keeps its own device and batch size.
    pr.set_defaults(device=None, batch_size=None, func=handler)


def score_images(model: Any, image_set: Any, args: argparse.Namespace,
                 keep_grids: bool = True, scorer: Any = None) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Score all images in memory; paths, scores, errors and float32 grids in listing order.

    Without ``keep_grids`` no grids are kept (memory stays flat over 100k images).
    ``scorer``: ``iter_predict`` by default, or the Ray engine's (results in any order).
    """
    from ..core.engine import iter_predict

    n = len(image_set)
    scores = np.full(n, np.nan, dtype=np.float32)
    errors = [""] * n
    grids: np.ndarray | None = None
    bar = progress_bar("predict", n, args.quiet)
    try:
        for r in (scorer or iter_predict)(model, image_set, batch_size=args.batch_size, num_workers=args.num_workers,
                              grid_dtype=np.float32):
            if grids is None and keep_grids:
                grids = np.full((n, *r.grids.shape[1:]), np.nan, dtype=np.float32)
            scores[r.indices] = r.scores
            if grids is not None:
                grids[r.indices] = r.grids
            for i, e in zip(r.indices, r.errors, strict=True):
                errors[int(i)] = e
            bar.update(len(r))
    finally:
        bar.close()
    if grids is None:
        grids = np.zeros((0, 1, 1), dtype=np.float32)
    return [str(p) for p in image_set.paths], scores, errors, grids


def _check_options(args: argparse.Namespace, run_file: str | None, resume: bool) -> None:
    if resume and not run_file:
        raise CliError("--resume needs --run FILE (the run file to continue)")
    if resume and args.images:
        raise CliError("--images cannot be used with --resume: the image list comes from the run file")
    if not resume and (not args.model or not args.images):
        raise CliError("predict needs --model and --images (or --run FILE --resume)")
    if run_file and not resume and Path(run_file).exists():
        raise CliError(f"run file {run_file} already exists; add --resume to continue it, or choose another name")


def _model_for(args: argparse.Namespace, run_file: str | None, resume: bool) -> Any:
    """The model to score with; a resumed run's own model file, device and precision by default."""
    precision = getattr(args, "precision", "auto")
    device = args.device
    if is_ray(args):  # the driver only describes the run: its CPU, the workers' precision
        device, precision = driver_model_args(args, resume)
    if not resume:
        return load_model(args.model, device or "auto", precision)
    from ..core.run_file import RunFile

    with RunFile.open(run_file, readonly=True) as rs:  # type: ignore[arg-type]
        run_meta = rs.meta
    model_path = args.model or run_meta["model_path"]
    if not Path(model_path).is_file():
        raise CliError(f"the run's model file is missing: {model_path} (give its new place with --model)")
    if precision == "auto":  # the run's own arithmetic, so resumed scores match
        precision = run_meta["settings"].get("precision") or "auto"
    return load_model(model_path, device or run_meta["settings"].get("device") or "auto", precision)


def _predict_into_run(model: Any, image_set: Any, args: argparse.Namespace, run_file: str,
                      resume: bool, engine: dict[str, Any] | None = None) -> tuple[list[str], np.ndarray, list[str], list[np.ndarray], float, float]:
    """Score into the run file, then read the results back from it (thresholds: the run's)."""
    from ..core import run_driver

    grids_now: dict[int, np.ndarray] = {}

    def keep_grids(r: Any) -> None:
        if args.maps_out:
            grids_now.update(zip(r.indices.tolist(), r.grids, strict=True))

    start, total = run_driver.run_progress(run_file, image_set)
    bar = progress_bar("predict", total, args.quiet)
    bar.update(start)
    try:
        run_driver.predict_into_run(
            model, image_set, run_file, batch_size=args.batch_size, num_workers=args.num_workers,
            resume=resume, progress=lambda d, t: bar.update(d - bar.n), on_batch=keep_grids,
            grid_dtype=np.float32, **(engine or {}),
        )
    finally:
        bar.close()
    res = run_driver.read_results(run_file, image_set, grids_now if args.maps_out else None)
    return res.paths, res.scores, res.errors, res.grids, res.threshold, res.review_from


def _maps(model: Any, grids: Any) -> Iterator[np.ndarray]:
    """Full (crop, crop) maps of the grids, one at a time; NaN for an image that did not score."""
    crop = model.config.crop
    for g in grids:
        if np.isfinite(g).all():
            yield model.anomaly_maps(g[None])[0]
        else:
            yield np.full((crop, crop), np.nan, dtype=np.float32)


def _predict(args: argparse.Namespace) -> int:
    from ..core.verdict import ng_mask, review_mask
    from ..reports.predict_output import results_csv, write_maps_npz

    # The demo command builds its own Namespace without the run options.
    run_file: str | None = getattr(args, "run", None)
    resume = bool(getattr(args, "resume", False))
    _check_options(args, run_file, resume)
    check_engine_options(args)

    def prepare() -> tuple[Any, Any]:
        model = _model_for(args, run_file, resume)
        # With the ground truth the layout gives, also without a run file: the drift check
        # leaves images labelled defective out (an MVTec test folder is mostly defects).
        # A folder, or a URI (core/uri_listing.py); a resumed run's list is its own.
        return model, None if resume else list_images_for(args.images)

    t0 = time.perf_counter()
    # The engine's scorer; with Ray, prepare() runs while Ray starts, and Ray runs inside the block.
    with engine_kwargs(args, prepare) as engine:
        model, image_set = engine.pop("prepared")
        if run_file:
            paths, scores, errors, grids, thr, rf = _predict_into_run(model, image_set, args, run_file, resume,
                                                                      engine)
        else:
            paths, scores, errors, grids = score_images(model, image_set, args, keep_grids=bool(args.maps_out),
                                                        scorer=engine.get("scorer"))
            thr, rf = model.image_threshold, model.review_from
    elapsed = time.perf_counter() - t0
    text = results_csv(paths, scores, errors, thr, rf)
    if args.output:
        write_text_atomic(args.output, text)
    else:
        write_stdout(text)
    if args.maps_out:
        write_maps_npz(args.maps_out, paths, _maps(model, grids), len(paths), model.config.crop)
    n_err = sum(1 for e in errors if e)
    ng = int(np.count_nonzero(ng_mask(scores, thr))) if math.isfinite(thr) else 0
    review = int(np.count_nonzero(review_mask(scores, thr, rf)))
    rate = len(paths) / elapsed if elapsed > 0 else float("nan")
    band = f"{review} REVIEW, " if math.isfinite(rf) else ""
    print(f"{len(paths)} images, {ng} NG, {band}{len(paths) - n_err - ng - review} OK, {n_err} errors "
          f"({rate:.1f} images/s, threshold {fmt(thr) or 'none'}"
          + (f", review from {fmt(rf)}" if math.isfinite(rf) else "") + ")", file=sys.stderr)
    _say_drift(model, scores, image_set.labels if image_set is not None else _run_labels(run_file))
    return EXIT_OK


def _run_labels(run_file: str | None) -> np.ndarray | None:
    """The ground truth a (resumed) run file recorded, in index order."""
    from ..core.run_file import RunFile

    if not run_file:
        return None
    with RunFile.open(run_file, readonly=True) as rs:
        return rs.columns()["label"]


def _say_drift(model: Any, scores: np.ndarray, labels: np.ndarray | None) -> None:
    """A ``drift:`` line on stderr when the batch no longer scores like the model's calibration
    images (core/drift.py); a note when the model cannot be checked; nothing when normal."""
    from ..core.drift import FEW_CALIBRATION, NO_CALIBRATION, check_drift

    res = check_drift(scores, model.calibration_scores, labels)
    if res.shifted:
        print(f"drift: {res.message()}", file=sys.stderr)
    elif res.status in (FEW_CALIBRATION, NO_CALIBRATION):
        print(f"note: {res.message()}", file=sys.stderr)


def handler(args: argparse.Namespace) -> int:
    """Score a folder; with --run record the run in a run file, with --resume continue one."""
    from ..core.run_file import RunFileError

    try:
        return _predict(args)
    except RunFileError as exc:  # locked, not a run file, model changed: one line, exit 2
        raise CliError(str(exc)) from None
