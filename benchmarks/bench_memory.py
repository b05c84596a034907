"""Memory benchmark: resident memory growth over a long prediction (issue: < 1 GB per 100k).

Generates small synthetic PNGs (one file, hard-linked N times, so the disk stays small),
trains a tiny EfficientNet-Lite0 model (crop 64), and streams iter_predict over all of
them, sampling RSS every 5,000 images. Prints the growth beyond the loaded model.

    .venv/bin/python benchmarks/bench_memory.py [--images 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    from PIL import Image

    from patchcore_gui.core.engine import TrainConfig, iter_predict, train_model

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    train = []
    for i in range(8):
        p = tmp / f"train{i}.png"
        Image.fromarray(rng.integers(90, 160, (72, 72, 3), dtype=np.uint8)).save(p)
        train.append(p)
    model = train_model(train, TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5,
                                           holdout=0.0), device="cpu")
    folder = tmp / "many"
    folder.mkdir()
    paths = []
    for i in range(args.images):
        src = tmp / f"img{i // 50_000}.png"  # file systems cap hard links per file (ext4: 65,000)
        if i % 50_000 == 0:
            Image.fromarray(rng.integers(90, 160, (72, 72, 3), dtype=np.uint8)).save(src)
        p = folder / f"{i:06d}.png"
        os.link(src, p)
        paths.append(str(p))
    base = rss_mb()
    print(f"{args.images} images, batch {args.batch_size}; RSS after model load and listing: {base:.0f} MB")
    scores = np.empty(args.images, dtype=np.float32)
    done, t = 0, time.perf_counter()
    for r in iter_predict(model, paths, batch_size=args.batch_size):
        scores[r.indices] = r.scores
        done += len(r)
        if done % 5000 < args.batch_size:
            print(f"{done:7d} images  RSS {rss_mb():7.0f} MB  (+{rss_mb() - base:.0f})  {done / (time.perf_counter() - t):.0f} img/s",
                  flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"growth {rss_mb() - base:.0f} MB over {done} images; peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
