"""GPU benchmark (run on a machine with CUDA): images/s against batch size and bank size.

WideResNet-50-2 (fixed-seed random weights; speed does not depend on them) at 224 px.
Two measurements per setting: from tensors already on the GPU (model compute only),
and end to end from PNG files decoded by DataLoader workers. Also times the coreset
(10 % of 163,856 x 1024 rows) on the GPU.

    .venv/bin/python benchmarks/bench_gpu.py [--banks 16384 65536 262144] [--batches 64 128 256]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--banks", type=int, nargs="+", default=[16384, 65536, 262144])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--files", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device")
    import torchvision
    from PIL import Image

    from patchcore_gui.core.backbones import build_extractor
    from patchcore_gui.core.coreset import greedy_coreset
    from patchcore_gui.core.engine import iter_predict
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel
    from patchcore_gui.core.search import faiss_has_gpu

    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, faiss GPU: {faiss_has_gpu()}, "
          f"cpus {os.cpu_count()}")
    torch.manual_seed(0)
    sd = torchvision.models.wide_resnet50_2(weights=None).state_dict()
    ext = build_extractor("wide_resnet50_2", ["layer2", "layer3"], sd)
    cfg = ModelConfig()

    t = time.perf_counter()
    rows = torch.randn(163856, 1024, device=dev)
    picks = greedy_coreset(rows, 0.1, seed=0, device=dev)
    torch.cuda.synchronize()
    print(f"coreset 10 % of 163,856 x 1024 on GPU: {time.perf_counter() - t:.1f} s ({len(picks)} picks)")
    del rows

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.files):
        p = tmp / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(p, compress_level=1)
        paths.append(p)

    print("precision | bank | batch | images/s from GPU tensors | images/s from PNG files")
    for prec in ("bf16", "fp32"):
        for bank_rows in args.banks:
            bank = torch.randn(bank_rows, 1024)
            model = PatchCoreModel(cfg, ext, bank, {}, device=dev, precision=prec)
            for bs in args.batches:
                x = torch.randn(bs, 3, 224, 224, device=dev)
                model.score_tensor(x)
                torch.cuda.synchronize()
                reps = max(2, 2048 // bs)
                t = time.perf_counter()
                for _ in range(reps):
                    model.score_tensor(x)
                torch.cuda.synchronize()
                gpu_rate = reps * bs / (time.perf_counter() - t)
                t = time.perf_counter()
                n = sum(len(r) for r in iter_predict(model, paths, batch_size=bs, num_workers=args.workers))
                file_rate = n / (time.perf_counter() - t)
                print(f"{prec} | {bank_rows} | {bs} | {gpu_rate:.0f} | {file_rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
