"""Prediction benchmark: images/s for WideResNet-50-2 at 224 px with a 16,385-row bank.

Weights are fixed-seed random (speed does not depend on them); the bank holds real-shaped
rows (features of brick crops). Prints the compute floor measured in the same run:
backbone forward to layer3 + one float32 (784 x 1024) x (1024 x bank) product per image.

    .venv/bin/python benchmarks/bench_predict.py [--images 32] [--batch-size 8] [--bank 16385]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bank", type=int, default=16385)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torchvision
    from PIL import Image
    from skimage import data

    from patchcore_gui.core.backbones import build_extractor
    from patchcore_gui.core.engine import iter_predict
    from patchcore_gui.core.features import EmbeddingConfig
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel

    torch.manual_seed(0)
    sd = torchvision.models.wide_resnet50_2(weights=None).state_dict()
    ext = build_extractor("wide_resnet50_2", ["layer2", "layer3"], sd)
    tmp = Path(tempfile.mkdtemp())
    brick = data.brick()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.images):
        y, x = rng.integers(0, 512 - 300, 2)
        p = tmp / f"{i:04d}.png"
        Image.fromarray(brick[y : y + 300, x : x + 300]).convert("RGB").save(p)
        paths.append(p)
    cfg = ModelConfig(embedding=EmbeddingConfig())
    shell = PatchCoreModel(cfg, ext, torch.randn(8, 1024), device=args.device)
    feats, _ = shell.embed(torch.stack([cfg.preprocess(Image.open(p).convert("RGB")) for p in paths[:21]]))
    rows = feats.reshape(-1, 1024)
    bank = rows[torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))[: args.bank]]
    model = PatchCoreModel(cfg, ext, bank, {}, device=args.device)
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__} threads {torch.get_num_threads()}; "
          f"wide_resnet50_2 224 px, bank {model.bank_size} x {model.feature_dim}, batch {args.batch_size}, "
          f"{args.images} PNG images, device {args.device}, search {model.search.backend}")

    list(iter_predict(model, paths[: args.batch_size], batch_size=args.batch_size))  # warm-up
    t = time.perf_counter()
    n = sum(len(r) for r in iter_predict(model, paths, batch_size=args.batch_size))
    dt = time.perf_counter() - t
    print(f"end to end from PNG: {dt / n:.3f} s/image ({n / dt:.2f} images/s)")

    # Compute floor, same process: backbone to layer3, and one float32 product per image.
    x = torch.randn(args.batch_size, 3, 224, 224)
    q = torch.randn(784, 1024)
    b = bank.T.contiguous()
    with torch.no_grad():
        ext(x)
        t = time.perf_counter()
        reps = max(1, args.images // args.batch_size)
        for _ in range(reps):
            ext(x)
        fwd = (time.perf_counter() - t) / (reps * args.batch_size)
        t = time.perf_counter()
        for _ in range(args.images):
            q @ b
        mm = (time.perf_counter() - t) / args.images
    print(f"floor: backbone {fwd:.3f} s + product {mm:.3f} s = {fwd + mm:.3f} s/image; "
          f"engine at {dt / n / (fwd + mm):.2f} x floor")


if __name__ == "__main__":
    main()
