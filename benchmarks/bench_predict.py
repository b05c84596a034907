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
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
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
          f"{args.images} PNG images, device {args.device}")
    per_image: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for prec in args.precision:
        m = PatchCoreModel(cfg, ext, bank, {}, device=args.device, precision=prec)
        list(iter_predict(m, paths[: args.batch_size], batch_size=args.batch_size))  # warm-up
        second = 0
        t = time.perf_counter()
        out = []
        for r in iter_predict(m, paths, batch_size=args.batch_size, grid_dtype=np.float32):
            out.append(r.scores)
            second += getattr(m.search, "last_second_pass", 0)
        dt = time.perf_counter() - t
        scores[prec] = np.concatenate(out)
        per_image[prec] = dt / len(paths)
        extra = f", bound pass re-scored {second} pairs in the last batches" if prec == "bf16" else ""
        print(f"[{prec}] search {m.search.backend}: {dt / len(paths):.3f} s/image ({len(paths) / dt:.2f} images/s){extra}")
    if "fp32" in scores and "bf16" in scores:
        rel = np.abs(scores["bf16"] - scores["fp32"]) / scores["fp32"]
        print(f"bf16 vs fp32 image scores: max relative difference {rel.max():.2e}")

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
    from patchcore_gui.core.search import NearestNeighbourSearch

    ex = NearestNeighbourSearch(bank, "cpu")
    qn = q.numpy()
    ex.search(qn, 1)
    t = time.perf_counter()
    for _ in range(4):
        ex.search(qn, 1)
    print(f"faiss IndexFlatL2 search of 784 queries: {(time.perf_counter() - t) / 4:.3f} s/image")
    floor = fwd + mm
    print(f"floor: backbone {fwd:.3f} s + product {mm:.3f} s = {floor:.3f} s/image")
    for prec, v in per_image.items():
        print(f"[{prec}] {v:.3f} s/image = {v / floor:.2f} x floor")


if __name__ == "__main__":
    main()
