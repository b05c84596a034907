"""Report export benchmark: a synthetic run of N flagged images to HTML and PDF (and CSV).

Generates small textured images on disk, trains a tiny real model (EfficientNet-Lite0,
crop 64, offline weights), writes a run file with fake float16 grids whose scores are all
above the threshold (every image flagged), then times ``write_report`` per format.

    .venv/bin/python benchmarks/bench_report.py [--images 1000] [--size 256] [--keep DIR]

Target (issue #4): under a minute per format for 1,000 flagged images on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 3.0 + rng.uniform(0, 6.28)) + 10 * np.cos(yy / 5.0)
    return np.clip(base[..., None] + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256, help="side of the generated images (px)")
    ap.add_argument("--keep", default=None, help="folder to keep the run and reports in")
    args = ap.parse_args()

    from PIL import Image

    from patchcore_gui.core.datasets import scan_folder
    from patchcore_gui.core.engine import TrainConfig, train_model
    from patchcore_gui.core.results import BatchResult
    from patchcore_gui.core.run_file import RunFile
    from patchcore_gui.reports.report import write_report

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_report_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train, imgs = work / "train", work / "images"
    train.mkdir(exist_ok=True)
    imgs.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    for i in range(8):
        Image.fromarray(_texture(rng, 96, 104)).save(train / f"{i}.png")
    sheets = [_texture(rng, 2 * args.size, 2 * args.size) for _ in range(4)]  # crop windows: fast to make
    for i in range(args.images):
        y0, x0 = rng.integers(0, args.size, 2)
        img = sheets[i % 4][y0 : y0 + args.size, x0 : x0 + args.size].copy()
        y, x = rng.integers(0, args.size - 30, 2)
        img[y : y + 24, x : x + 24] = (250, 20, 20)
        Image.fromarray(img).save(imgs / f"part_{i:05d}.png")
    print(f"generated {args.images} images of {args.size} px in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    model = train_model(sorted(train.glob("*.png")),
                        TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5, holdout=0.25),
                        device="cpu", batch_size=4)
    model.save(work / "tiny.patchcore")
    thr, pix = model.image_threshold, model.pixel_threshold
    import torch

    gh, gw = model.score_tensor(torch.zeros(1, 3, 64, 64))[1].shape[1:]
    print(f"trained tiny model in {time.perf_counter() - t0:.1f} s (grid {gh} x {gw}, threshold {thr:.4g})")

    iset = scan_folder(imgs)
    run = work / "run.sqlite"
    run.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with RunFile.create(run, model, iset, {"device": "cpu", "batch_size": 100, "num_workers": 0}) as st:
        paths = [str(p) for p in iset.paths]
        for start in range(0, len(paths), 100):
            idx = np.arange(start, min(start + 100, len(paths)))
            grids = rng.uniform(0.2, 0.9, (len(idx), gh, gw)) * pix
            for g in grids:  # a hot spot above the pixel threshold somewhere
                y, x = rng.integers(1, gh - 2), rng.integers(1, gw - 2)
                g[y - 1 : y + 2, x - 1 : x + 2] = pix * rng.uniform(1.5, 3.0)
            scores = np.maximum(grids.reshape(len(idx), -1).max(axis=1), thr * 1.05).astype(np.float32)
            st.add_batch(BatchResult(indices=idx, paths=[paths[i] for i in idx], scores=scores,
                                     grids=grids.astype(np.float16), errors=[""] * len(idx),
                                     labels=np.full(len(idx), -1, dtype=np.int8)))
        st.set_status("finished")
    print(f"wrote synthetic run file in {time.perf_counter() - t0:.1f} s")

    for ext in (".html", ".pdf", ".csv"):
        out = work / f"report{ext}"
        t0 = time.perf_counter()
        res = write_report(run, out, operator="Benchmark")
        dt = time.perf_counter() - t0
        print(f"{ext[1:].upper():4s} {res.images} images: {dt:.1f} s ({out.stat().st_size / 1e6:.1f} MB)")
    if args.keep:
        print(f"files in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
