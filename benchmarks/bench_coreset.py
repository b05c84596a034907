"""Coreset benchmark: 10 % of 163,856 x 1024 rows (one MVTec class at 224 px).

Rows are real-shaped patch features: the default closed-form embedding of random-weight
(fixed seed) WideResNet-50-2 features of brick-photo crops, 209 images x 784 patches,
unless --synthetic is given (clustered Gaussian rows, faster to make).

    .venv/bin/python benchmarks/bench_coreset.py [--rows 163856] [--fraction 0.1] [--check]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from patchcore_gui.core.coreset import greedy_coreset, greedy_coreset_reference  # noqa: E402


def features(rows: int, synthetic: bool) -> torch.Tensor:
    if synthetic:
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(512, 1024, generator=g)
        return centres[torch.randint(0, 512, (rows,), generator=g)] + 0.7 * torch.randn(rows, 1024, generator=g)
    import torchvision
    from skimage import data

    from patchcore_gui.core.features import EmbeddingConfig, embed
    from patchcore_gui.core.preprocess import Preprocess

    torch.manual_seed(0)
    net = torchvision.models.wide_resnet50_2(weights=None).eval()
    brick = data.brick()
    rng = np.random.default_rng(0)
    pre = Preprocess()
    from PIL import Image

    n_img = -(-rows // 784)
    out = []
    with torch.no_grad():
        for start in range(0, n_img, 8):
            imgs = []
            for _ in range(min(8, n_img - start)):
                y, x = rng.integers(0, 512 - 300, 2)
                imgs.append(pre(Image.fromarray(brick[y : y + 300, x : x + 300]).convert("RGB")))
            b = torch.stack(imgs)
            h = net.maxpool(net.relu(net.bn1(net.conv1(b))))
            l2 = net.layer2(net.layer1(h))
            l3 = net.layer3(l2)
            f, _ = embed([l2, l3], EmbeddingConfig())
            out.append(f.reshape(-1, 1024))
    return torch.cat(out)[:rows].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=163856)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--check", action="store_true", help="also run the straightforward algorithm and compare picks")
    args = ap.parse_args()
    t = time.perf_counter()
    x = features(args.rows, args.synthetic)
    print(f"features {tuple(x.shape)} made in {time.perf_counter() - t:.1f} s "
          f"({'synthetic' if args.synthetic else 'WR50 random weights on brick crops'})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    t = time.perf_counter()
    picks = greedy_coreset(x, args.fraction, seed=0)
    fast = time.perf_counter() - t
    print(f"coreset {args.fraction:g} of {args.rows} rows -> {len(picks)} picks: {fast:.1f} s")
    if args.check:
        t = time.perf_counter()
        ref = greedy_coreset_reference(x, args.fraction, seed=0)
        print(f"straightforward algorithm: {time.perf_counter() - t:.1f} s; same picks: {np.array_equal(picks, ref)}")


if __name__ == "__main__":
    main()
