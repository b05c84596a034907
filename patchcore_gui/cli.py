"""The headless ``patchcore`` command: train, predict, evaluate, info, demo.

Exit codes: 0 success (also when some images failed: they are rows with an error),
2 bad arguments or an unusable model / input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK = 0
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _progress_bar(desc: str, total: int, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True, leave=False)


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _non_negative_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {v}")
    return v


def _fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .core.backbones import BACKBONES
    from .core.precision import ACCEPTED_PRECISIONS

    p = argparse.ArgumentParser(prog="patchcore", description="PatchCore anomaly detection (headless).")
    sub = p.add_subparsers(dest="command", required=True)

    def device_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
        sp.add_argument("--batch-size", type=_positive_int, default=None,
                        help="images per batch (default: 8 on the CPU; on CUDA chosen from free GPU memory)")
        sp.add_argument("--num-workers", type=_non_negative_int, default=None,
                        help="DataLoader worker processes decoding images (default: 0 on the CPU, "
                             "up to 8 on CUDA)")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
        sp.add_argument("--precision", choices=ACCEPTED_PRECISIONS, default="auto", metavar="{auto,exact,fast,half}",
                        help="exact: the official code's scores; fast: reduced search with exact re-scoring "
                             "(float16 backbone on CUDA, float32 on the CPU; scores within 1 %%); half: fast "
                             "with a bfloat16 backbone on CPUs with native bfloat16 (float16 on CUDA), scores "
                             "move more (see README); auto (default): exact on the CPU, fast on CUDA. "
                             "fp32 and bf16 are accepted as the old names of exact and fast")

    t = sub.add_parser("train", help="train a model from a folder of good images")
    t.add_argument("--images", required=True, help="folder of good images (MVTec class root: uses train/good)")
    t.add_argument("--output", required=True, help="model file to write (.patchcore)")
    t.add_argument("--backbone", default="wide_resnet50_2", choices=sorted(BACKBONES))
    t.add_argument("--weights", default=None, help="backbone state-dict file (else the torch hub cache)")
    t.add_argument("--layers", nargs="+", default=None, help="backbone layers (default: the backbone's)")
    t.add_argument("--resize", type=_non_negative_int, default=256)
    t.add_argument("--crop", type=_positive_int, default=224)
    t.add_argument("--coreset", type=float, default=0.1, help="fraction of patches kept (1.0 keeps all)")
    t.add_argument("--k", type=_positive_int, default=1, help="nearest neighbours averaged per patch")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--holdout", type=_fraction, default=0.1, help="share of good images held out for calibration (0: off)")
    t.add_argument("--embedding", choices=["reference", "native"], default=None,
                   help="patch-feature layout (default: reference; native for efficientnet_lite0)")
    t.add_argument("--reweight", type=_non_negative_int, default=0,
                   help="paper Eq. 7 image-score re-weighting with N bank neighbours (anomalib: 9; default 0 = off, as the reference)")
    t.add_argument("--bn-warmup", choices=["official", "none"], default="official",
                   help="BatchNorm warm-up before feature extraction: official (one train-mode forward of ones, "
                        "as patchcore-inspection; default) or none")
    device_opts(t)

    pr = sub.add_parser("predict", help="score every image in a folder")
    pr.add_argument("--model", default=None, help="model file (required unless --resume)")
    pr.add_argument("--images", default=None, help="folder of images (recursive; required unless --resume)")
    pr.add_argument("--output", default=None, help="CSV file to write (default: standard output)")
    pr.add_argument("--maps-out", default=None, help=".npz with paths and (N, crop, crop) float32 maps")
    pr.add_argument("--run", default=None, metavar="FILE",
                    help="record the run in this run file (SQLite: scores, grids, settings, status)")
    pr.add_argument("--resume", action="store_true",
                    help="continue the run file given with --run; model, folder and batch size come from it")
    device_opts(pr)
    # None = not given: a resumed run then keeps its own device and batch size.
    pr.set_defaults(device=None, batch_size=None)

    ev = sub.add_parser("evaluate", help="image AUROC, pixel AUROC, PRO and F1 threshold on an MVTec-layout folder")
    ev.add_argument("--model", required=True)
    ev.add_argument("--dataset", required=True, help="MVTec AD class folder (test/, ground_truth/)")
    ev.add_argument("--output", default=None, help="metrics JSON file to write")
    device_opts(ev)

    info = sub.add_parser("info", help="print a model file's metadata")
    info.add_argument("model")

    demo = sub.add_parser("demo", help="build the embedded demo data set and model, then predict its test folder")
    demo.add_argument("--rebuild", action="store_true", help="rebuild the cached demo model")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    for module in _command_modules():
        module.register(sub)
    return p


#: Further commands, one module each under ``patchcore_gui/commands``; every module has
#: ``register(subparsers)`` that adds its parser with ``set_defaults(func=handler)``.
EXTRA_COMMANDS: tuple[str, ...] = ("report", "doctor", "import_official")


def _command_modules() -> list[Any]:
    import importlib

    modules = []
    for name in EXTRA_COMMANDS:
        full = f"patchcore_gui.commands.{name}"
        try:
            modules.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:  # a missing dependency inside the module is a real error
                raise
    return modules


# ----------------------------------------------------------------------------- helpers


def _load_model(path: str, device: str, precision: str = "auto") -> Any:
    from .core.model import PatchCoreModel

    return PatchCoreModel.load(path, device=device, precision=precision)


def _write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    from .core.modelfile import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def _write_stdout(text: str) -> None:
    """Print CSV text; file names that are not valid UTF-8 go out as their original bytes."""
    buf = getattr(sys.stdout, "buffer", None)
    if buf is None:
        sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        return
    sys.stdout.flush()
    buf.write(text.encode("utf-8", "surrogateescape"))
    buf.flush()


def _verdict(score: float, threshold: float) -> str:
    if not math.isfinite(score):
        return "error"
    if not math.isfinite(threshold):
        return ""
    return "NG" if score > threshold else "OK"


def _fmt(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def results_csv(paths: Sequence[str], scores: np.ndarray, errors: Sequence[str], threshold: float) -> str:
    """The predict CSV: path,score,normalized_score,verdict,error."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "score", "normalized_score", "verdict", "error"])
    for p, s, e in zip(paths, scores, errors, strict=True):
        s = float(s)
        norm = s / threshold if math.isfinite(threshold) and threshold > 0 and math.isfinite(s) else float("nan")
        w.writerow([p, _fmt(s), _fmt(norm), _verdict(s, threshold), e])
    return buf.getvalue()


def write_maps_npz(path: str | os.PathLike[str], paths: Sequence[str], maps_iter: Any, n: int, size: int) -> None:
    """Stream maps into an .npz (``paths``, ``maps`` float32 (n, size, size)) without holding them all.

    Written to a temporary file and renamed, so a failure leaves no partial file.
    """
    import tempfile
    import zipfile

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("paths.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.array(list(paths), dtype=str), allow_pickle=False)
            with zf.open("maps.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_2_0(
                    fh, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (n, size, size)}
                )
                written = 0
                for m in maps_iter:
                    fh.write(np.ascontiguousarray(m, dtype="<f4").tobytes())
                    written += 1
                if written != n:
                    raise RuntimeError(f"wrote {written} maps, expected {n}")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _run_prediction(model: Any, image_set: Any, args: argparse.Namespace, quiet: bool,
                    keep_grids: bool = True) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Score all images; returns paths, scores, errors and float32 grids in listing order.

    Without ``keep_grids`` no grids are kept (memory stays flat over 100k images).
    """
    from .core.engine import iter_predict

    n = len(image_set)
    scores = np.full(n, np.nan, dtype=np.float32)
    errors = [""] * n
    grids: np.ndarray | None = None
    bar = _progress_bar("predict", n, quiet)
    try:
        for r in iter_predict(model, image_set, batch_size=args.batch_size, num_workers=args.num_workers, grid_dtype=np.float32):
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


# ----------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from .core.datasets import mvtec_train_paths
    from .core.engine import TrainConfig, train_model

    paths = mvtec_train_paths(args.images)
    if not paths:
        raise CliError(f"no images found in {args.images}")
    cfg = TrainConfig(
        backbone=args.backbone,
        layers=tuple(args.layers) if args.layers else None,
        embedding=args.embedding,
        resize=args.resize,
        crop=args.crop,
        coreset=args.coreset,
        k=args.k,
        seed=args.seed,
        holdout=args.holdout,
        reweight=args.reweight,
        precision=args.precision,
        bn_warmup=args.bn_warmup,
    )
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = _progress_bar(stage, total, args.quiet)
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
    skipped = model.metadata["training"]["skipped"]
    print(
        f"trained {s['backbone']} on {s['training_images']} images in {time.perf_counter() - t0:.1f} s: "
        f"bank {s['bank_rows']} x {s['feature_dim']}, image threshold {_fmt(s['image_threshold']) or 'none'} -> {args.output}"
    )
    for item in skipped:
        print(f"skipped {item['path']}: {item['error']}", file=sys.stderr)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Score a folder; with --run record the run in a run file, with --resume continue one."""
    from .core.run_file import RunFileError

    def _predict() -> int:
        from .core.datasets import list_images

        # cmd_demo builds its own Namespace without the run options.
        run_file: str | None = getattr(args, "run", None)
        resume = bool(getattr(args, "resume", False))

        if resume and not run_file:
            raise CliError("--resume needs --run FILE (the run file to continue)")
        if resume and args.images:
            raise CliError("--images cannot be used with --resume: the image list comes from the run file")
        if not resume and (not args.model or not args.images):
            raise CliError("predict needs --model and --images (or --run FILE --resume)")
        if run_file:
            from .core import run_driver
            from .core.run_file import RunFile

            if resume:
                with RunFile.open(run_file, readonly=True) as rs:
                    run_meta = rs.meta
                model_path = args.model or run_meta["model_path"]
                if not Path(model_path).is_file():
                    raise CliError(f"the run's model file is missing: {model_path} (give its new place with --model)")
                precision = getattr(args, "precision", "auto")
                if precision == "auto":  # the run's own arithmetic, so resumed scores match
                    precision = run_meta["settings"].get("precision") or "auto"
                model = _load_model(model_path, args.device or run_meta["settings"].get("device") or "auto",
                                    precision)
            else:
                if Path(run_file).exists():
                    raise CliError(f"run file {run_file} already exists; add --resume to continue it, or choose another name")
                model = _load_model(args.model, args.device or "auto", getattr(args, "precision", "auto"))
        else:
            model = _load_model(args.model, args.device or "auto", getattr(args, "precision", "auto"))
        image_set = None
        if not resume:
            paths = list_images(args.images)
            from .core.datasets import ImageSet

            image_set = ImageSet(
                root=Path(args.images), paths=paths, labels=np.full(len(paths), -1, dtype=np.int8),
                mask_paths=[None] * len(paths), defect_types=[""] * len(paths), layout="folder",
            )
            if run_file:  # record the ground truth the folder layout gives, in the listing's order
                from .core.datasets import scan_folder

                truth = scan_folder(args.images)
                found = {str(p): k for k, p in enumerate(truth.paths)}
                at = [found.get(str(p), -1) for p in paths]
                image_set = ImageSet(
                    root=Path(args.images), paths=paths,
                    labels=np.array([truth.labels[k] if k >= 0 else -1 for k in at], dtype=np.int8),
                    mask_paths=[truth.mask_paths[k] if k >= 0 else None for k in at],
                    defect_types=[truth.defect_types[k] if k >= 0 else "" for k in at],
                    layout=truth.layout,
                )
        t0 = time.perf_counter()
        if run_file:
            grids_now: dict[int, np.ndarray] = {}

            def keep_grids(r: Any) -> None:
                if args.maps_out:
                    grids_now.update(zip(r.indices.tolist(), r.grids, strict=True))

            with RunFile.open(run_file, readonly=True) if resume else contextlib.nullcontext() as rs:
                total = len(rs) if rs is not None else len(image_set)
                start = len(rs.done_indices()) if rs is not None else 0
            bar = _progress_bar("predict", total, args.quiet)
            bar.update(start)
            try:
                run_driver.predict_into_run(
                    model, image_set, run_file, batch_size=args.batch_size, num_workers=args.num_workers,
                    resume=resume, progress=lambda d, t: bar.update(d - bar.n), on_batch=keep_grids,
                    grid_dtype=np.float32,
                )
            finally:
                bar.close()
            with RunFile.open(run_file, readonly=True) as rs:
                out_paths, cols, err_map, thr = rs.paths(), rs.columns(), rs.errors(), rs.image_threshold
                if image_set is not None:  # the CSV names images as listed (the run stores absolute paths)
                    out_paths = [str(p) for p in image_set.paths]
                scores = cols["score"]
                errors = [err_map.get(i, "") for i in range(len(out_paths))]
                if args.maps_out:
                    missing = [i for i in range(len(out_paths)) if i not in grids_now]
                    for i, g in rs.iter_grids(missing):  # images scored before a resume: float16 grids
                        grids_now[i] = g.astype(np.float32) if g is not None else np.full((1, 1), np.nan, np.float32)
            grids = [grids_now[i] for i in range(len(out_paths))] if args.maps_out else []
        else:
            out_paths, scores, errors, grids = _run_prediction(model, image_set, args, args.quiet,
                                                               keep_grids=bool(args.maps_out))
            thr = model.image_threshold
        elapsed = time.perf_counter() - t0
        text = results_csv(out_paths, scores, errors, thr)
        if args.output:
            _write_text_atomic(args.output, text)
        else:
            _write_stdout(text)
        if args.maps_out:
            crop = model.config.crop

            def maps() -> Any:
                for g in grids:
                    if np.isfinite(g).all():
                        yield model.anomaly_maps(g[None])[0]
                    else:
                        yield np.full((crop, crop), np.nan, dtype=np.float32)

            write_maps_npz(args.maps_out, out_paths, maps(), len(out_paths), crop)
        n_err = sum(1 for e in errors if e)
        ng = int(np.sum(scores[np.isfinite(scores)] > thr)) if math.isfinite(thr) else 0
        rate = len(out_paths) / elapsed if elapsed > 0 else float("nan")
        print(
            f"{len(out_paths)} images, {ng} NG, {len(out_paths) - n_err - ng} OK, {n_err} errors "
            f"({rate:.1f} images/s, threshold {_fmt(thr) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_OK

    try:
        return _predict()
    except RunFileError as exc:  # locked, not a run file, model changed: one line, exit 2
        raise CliError(str(exc)) from None


def evaluate_model(model: Any, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the model over an MVTec-layout test set and compute the metrics."""
    import torch

    from .core import metrics
    from .core.datasets import mvtec_test_set
    from .io.images import load_image

    test = mvtec_test_set(dataset)
    if not test.has_labels:
        raise CliError(f"{dataset} has no labelled test images")
    paths, scores, errors, grids = _run_prediction(model, test, args, args.quiet)
    ok = np.isfinite(scores)
    labels = test.labels.astype(np.int64)
    crop = model.config.crop
    maps, masks = [], []
    for i in np.flatnonzero(ok):
        maps.append(model.anomaly_maps(grids[i][None])[0])
        mp = test.mask_paths[i]
        if mp is not None:
            try:
                m = model.preprocess.mask(load_image(mp)).squeeze(0)
            except Exception:  # noqa: BLE001 - an unreadable mask only drops pixel metrics for one image
                m = torch.zeros(crop, crop)
        else:
            m = torch.zeros(crop, crop)
        masks.append(m.numpy().astype(np.uint8))
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
    return result


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _load_model(args.model, args.device, args.precision)
    result = evaluate_model(model, args.dataset, args)
    text = json.dumps(_json_safe(result), indent=2)
    if args.output:
        _write_text_atomic(args.output, text + "\n")
    print(text)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from .core.model import bn_warmup_label
    from .core.modelfile import read_model_file

    tensors, meta = read_model_file(args.model)
    bank = tensors["memory_bank"]
    info = dict(meta)
    info.get("calibration", {}).pop("scores", None)
    info["memory_bank"] = {"rows": int(bank.shape[0]), "dims": int(bank.shape[1]), "dtype": str(bank.dtype)}
    info["backbone_tensors"] = sum(1 for k in tensors if k.startswith("backbone."))
    info["bn_warmup_summary"] = bn_warmup_label(meta)
    info["file"] = str(Path(args.model).resolve())
    info["file_bytes"] = Path(args.model).stat().st_size
    print(json.dumps(_json_safe(info), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .core.demo import ensure_demo

    model_path, folder = ensure_demo(rebuild=args.rebuild, log=lambda m: print(m, file=sys.stderr))
    ns = argparse.Namespace(model=str(model_path), images=str(folder), output=None, maps_out=None,
                            device="auto", batch_size=8, num_workers=0, quiet=args.quiet)
    return cmd_predict(ns)


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "info": cmd_info, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``patchcore``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .core.backbones import WeightsUnavailableError
    from .core.coreset import CancelledError
    from .core.modelfile import ModelFileError
    from .io.images import ImageLoadError

    handler = getattr(args, "func", None) or COMMANDS[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("patchcore: interrupted", file=sys.stderr)
        return 130
    except (CliError, ModelFileError, WeightsUnavailableError, ImageLoadError, CancelledError,
            ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"patchcore: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f"{Path(exc.filename).name}: " if getattr(exc, "filename", None) else ""
        print(f"patchcore: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
