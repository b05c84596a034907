"""GPU benchmark (run on a machine with CUDA): images/s against batch size and bank size.

WideResNet-50-2 (fixed-seed random weights; speed does not depend on them) at 224 px.
Bank rows are real-shaped: patch features of crops of scikit-image's brick photograph
through the same network (isotropic random rows would be an unfair case for the fast
search's principal-subspace bound). Per precision, bank size and batch size:

* images/s from tensors already on the GPU (``score_tensor``: model + search);
* images/s end to end from PNG files decoded by DataLoader workers (``iter_predict``);
* the batch size ``default_batch_size`` picks from free memory, and the maps' cost on
  the GPU; bf16 vs fp32 image scores on the same images.

Also times the coreset (10 % of 163,856 x 1024 real-shaped rows) on the GPU.

    .venv/bin/python benchmarks/bench_gpu.py [--banks 16384 65536 262144] [--batches 64 128 256]
    .venv/bin/python benchmarks/bench_gpu.py --smoke   # tiny sizes on the CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def brick_crops(n: int, seed: int) -> list[np.ndarray]:
    """``n`` random 300 x 300 RGB crops of the brick photograph."""
    from skimage import data

    brick = np.asarray(data.brick())
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y, x = rng.integers(0, brick.shape[0] - 300, 2)
        out.append(np.repeat(brick[y : y + 300, x : x + 300, None], 3, axis=2))
    return out


def real_shaped_rows(shell: object, cfg: object, rows: int, seed: int) -> torch.Tensor:
    """At least ``rows`` patch features (on the CPU) of brick crops through the model."""
    from PIL import Image

    per_image = 784
    crops = brick_crops(-(-rows // per_image), seed)
    parts = []
    for s in range(0, len(crops), 64):
        x = torch.stack([cfg.preprocess(Image.fromarray(c)) for c in crops[s : s + 64]])  # type: ignore[attr-defined]
        feats, _ = shell.embed(x)  # type: ignore[attr-defined]
        parts.append(feats.reshape(-1, feats.shape[-1]).cpu())
    return torch.cat(parts)[:rows].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--banks", type=int, nargs="+", default=[16384, 65536, 262144])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--files", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=min(15, max(1, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--coreset-rows", type=int, default=163_856)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, CPU allowed: checks the script itself")
    args = ap.parse_args()
    if args.smoke:
        args.banks, args.batches, args.files, args.workers, args.coreset_rows = [1568], [2], 4, 0, 3136
    if not torch.cuda.is_available() and not args.smoke:
        sys.exit("bench_gpu: no CUDA device (use --smoke to check the script on the CPU)")
    import torchvision
    from PIL import Image

    from patchcore_gui.core.backbones import build_extractor
    from patchcore_gui.core.batching import default_batch_size
    from patchcore_gui.core.coreset import greedy_coreset
    from patchcore_gui.core.engine import iter_predict
    from patchcore_gui.core.maps import anomaly_maps_torch
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel
    from patchcore_gui.core.search import faiss_has_gpu

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    name = torch.cuda.get_device_name(0) if cuda else "CPU (smoke run)"
    print(f"{time.strftime('%Y-%m-%d %H:%M')} device: {name}, torch {torch.__version__}, "
          f"faiss GPU: {faiss_has_gpu()}, cpus {os.cpu_count()}, command: {' '.join(sys.argv)}", flush=True)
    torch.manual_seed(0)
    sd = torchvision.models.wide_resnet50_2(weights=None).state_dict()
    ext = build_extractor("wide_resnet50_2", ["layer2", "layer3"], sd)
    cfg = ModelConfig()
    shell = PatchCoreModel(cfg, ext, torch.randn(8, 1024), device=dev, precision="fp32")

    t = time.perf_counter()
    rows = real_shaped_rows(shell, cfg, max(max(args.banks), args.coreset_rows), seed=1)
    print(f"{rows.shape[0]} real-shaped bank rows in {time.perf_counter() - t:.1f} s", flush=True)

    core = rows[: args.coreset_rows].to(dev)
    sync()
    t = time.perf_counter()
    picks = greedy_coreset(core, 0.1, seed=0, device=dev)
    sync()
    print(f"coreset 10 % of {core.shape[0]:,} x {core.shape[1]} on {dev.type}: {time.perf_counter() - t:.1f} s "
          f"({len(picks)} picks)", flush=True)
    core = core[:0]  # free the GPU copy

    tmp = Path(tempfile.mkdtemp())
    paths = []
    for i, c in enumerate(brick_crops(args.files, seed=2)):
        p = tmp / f"{i:05d}.png"
        Image.fromarray(c).save(p, compress_level=1)
        paths.append(p)
    tensors = torch.stack([cfg.preprocess(Image.fromarray(c)) for c in brick_crops(max(args.batches), seed=3)])

    print("precision | bank | batch | images/s from GPU tensors | images/s from PNG files | auto batch")
    scores: dict[tuple[str, int], np.ndarray] = {}
    for prec in ("bf16", "fp32"):
        for bank_rows in args.banks:
            model = PatchCoreModel(cfg, ext, rows[:bank_rows], {}, device=dev, precision=prec)
            auto = default_batch_size(model)
            for bs in args.batches:
                x = tensors[:bs].to(dev)
                s, _ = model.score_tensor(x)  # warm-up; also the scores compared below
                scores[(prec, bank_rows)] = s
                reps = max(2, 2048 // bs) if cuda else 1
                sync()
                t = time.perf_counter()
                for _ in range(reps):
                    model.score_tensor(x)
                sync()
                gpu_rate = reps * bs / (time.perf_counter() - t)
                t = time.perf_counter()
                n = sum(len(r.scores) for r in iter_predict(model, paths, batch_size=bs, num_workers=args.workers))
                file_rate = n / (time.perf_counter() - t)
                print(f"{prec} | {bank_rows} | {bs} | {gpu_rate:.1f} | {file_rate:.1f} | {auto}", flush=True)
            model = None  # free the bank's GPU copy before the next one
            if cuda:
                torch.cuda.empty_cache()
    for bank_rows in args.banks:
        a, b = scores[("bf16", bank_rows)], scores[("fp32", bank_rows)]
        print(f"bank {bank_rows}: bf16 vs fp32 image scores, max relative difference "
              f"{float(np.max(np.abs(a - b) / np.abs(b))):.2e}")
    g = torch.rand(max(args.batches), 28, 28, device=dev)
    anomaly_maps_torch(g, 224)
    sync()
    t = time.perf_counter()
    anomaly_maps_torch(g, 224)
    sync()
    dt = time.perf_counter() - t
    print(f"maps on {dev.type}: {g.shape[0] / dt:.0f} maps/s (224 x 224)")


if __name__ == "__main__":
    main()
