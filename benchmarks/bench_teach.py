"""Teach as good vs a full retrain (issue 14 point 5), and the model-file growth of training pictures.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_teach.py [--train 100] [--teach 10]
        [--backbone efficientnet_lite0] [--threads 1] [--pictures 100 1000]

Images: 300 x 300 crops of scikit-image's real brick, gravel and grass photographs
(``bench_train.make_images``), default resize 256 / crop 224, coreset 10 %.

1. ``train_model`` on ``--train`` images (the parent), then ``core.teach.teach`` of
   ``--teach`` more images into it, then a full retrain on all ``--train + --teach``
   images (what teaching replaces). Wall and process-CPU seconds of each.
2. File sizes: the parent with and without its training pictures (``extra/`` tensors),
   and for each ``--pictures`` count N the bytes of N pictures (encoded for real from N
   images) against the model file for N training images: measured for the parent's
   N, and for other N the parent's size with the bank scaled to ``int(0.1 x 784 x N)``
   rows (bank, provenance and per-image metadata grow with N; the backbone does not).
   The issue's budget: growth <= 20 % or 20 MB for 1,000 images, whichever is less.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402
from bench_predict import set_threads  # noqa: E402
from bench_train import PATCHES_PER_IMAGE, make_images  # noqa: E402
from machine import cpu_name  # noqa: E402

from patchcore_gui.core import training_pictures as tp  # noqa: E402
from patchcore_gui.core.engine import TrainConfig, train_model  # noqa: E402
from patchcore_gui.core.teach import teach  # noqa: E402


def timed(fn):  # type: ignore[no-untyped-def]
    """(result, wall seconds, process CPU seconds)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def evidence_timing(model, path: Path, clicks: int = 20) -> None:  # type: ignore[no-untyped-def]
    """The window's evidence costs: a new image (backbone + search), then clicks (one pass over the bank)."""
    from patchcore_gui.core.evidence import EvidenceFinder
    from patchcore_gui.io.images import load_image
    from patchcore_gui.reports.report_evidence import evidence_panels

    finder = EvidenceFinder(model)
    ev, first, _ = timed(lambda: finder.explain(path))
    h, w = ev.grid
    walls = []
    for i in range(clicks):
        _, t, _ = timed(lambda i=i: finder.explain(path, cell=(i * 7 % h, i * 11 % w)))
        walls.append(t)
    img = load_image(path)
    _, draw, _ = timed(lambda: evidence_panels(ev, finder, img, 168))
    print(f"evidence: new image {1e3 * first:.0f} ms; a click {1e3 * float(np.median(walls)):.1f} ms median "
          f"(bank {model.bank_size} x {model.feature_dim}); drawing the four pictures {1e3 * draw:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--teach", type=int, default=10)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--coreset", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pictures", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--sizes-only", action="store_true", help="file sizes only (no teach / retrain timing)")
    a = ap.parse_args()
    set_threads(a.threads)
    print(f"CPU: {cpu_name()}; {a.threads} thread(s); {a.backbone}, coreset {a.coreset}, resize 256 / crop 224")
    tmp = Path(tempfile.mkdtemp(prefix="bench_teach_"))
    paths = make_images(a.train + a.teach, tmp)
    train, extra = paths[: a.train], paths[a.train:]
    cfg = TrainConfig(backbone=a.backbone, coreset=a.coreset)
    parent, tw, tc = timed(lambda: train_model(train, cfg, device="cpu"))
    print(f"train {a.train} images: {tw:.1f} s wall, {tc:.1f} s CPU; bank {parent.bank_size} rows")
    if not a.sizes_only:
        (child, report), hw, hc = timed(lambda: teach(parent, extra, note="bench"))
        print(f"teach {a.teach} images: {hw:.2f} s wall, {hc:.2f} s CPU; +{report.rows_added} rows "
              f"({report.rule})")
        full, rw, rc = timed(lambda: train_model(paths, cfg, device="cpu"))
        print(f"full retrain on {a.train + a.teach} images: {rw:.1f} s wall, {rc:.1f} s CPU; "
              f"bank {full.bank_size} rows")
        print(f"teach / retrain: {hw / rw:.3f} (wall), {hc / rc:.3f} (CPU); retrain is {rw / hw:.0f} x slower (wall)")

    evidence_timing(parent, extra[0] if extra else train[0])

    # The file without pictures (as a model file made before them), measured.
    parent.extra_tensors = {k: v for k, v in parent.extra_tensors.items() if k not in (tp.BLOB_KEY, tp.OFFSETS_KEY)}
    bare = tmp / "parent-no-pictures.patchcore"
    parent.save(bare)
    base = bare.stat().st_size
    print(f"\nparent file without pictures: {mb(base)} ({a.train} images, bank {parent.bank_size} x "
          f"{parent.feature_dim}); pictures: {tp.PICTURE_SIZE} px JPEG quality {tp.JPEG_QUALITY}")
    dim = parent.feature_dim
    per_row = dim * 4 + 8  # bank row + bank_source row
    per_image_meta = 200  # training.files record (path, SHA-256) and two calibration numbers, as JSON
    rows = parent.bank_size
    print("| training images | pictures | model file without pictures | growth | budget (min of 20 %, 20 MB) | ok |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in a.pictures:
        (tmp / f"p{n}").mkdir(exist_ok=True)
        imgs = make_images(n, tmp / f"p{n}") if n != a.train else train
        blob = tp.pack(tp.encode_files(imgs, parent.preprocess))
        nbytes = sum(int(v.numel() * v.element_size()) for v in blob.values())
        n_rows = int(a.coreset * PATCHES_PER_IMAGE * n) if a.coreset < 1 else PATCHES_PER_IMAGE * n
        model = base + (n_rows - rows) * per_row + (n - a.train) * per_image_meta
        how = "measured" if n == a.train else "scaled"
        budget = min(0.2 * model, 20e6)
        print(f"| {n} | {mb(nbytes)} ({nbytes / n / 1e3:.1f} kB each) | {mb(model)} ({how}) | {100 * nbytes / model:.1f} % | {mb(budget)} | "
              f"{'yes' if nbytes <= budget else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
