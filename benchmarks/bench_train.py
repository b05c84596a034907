"""Training benchmark: feature extraction + coreset + calibration against the official code's steps.

    .venv/bin/python benchmarks/bench_train.py [--rows 50000 160000 500000] [--official-picks 200]
        [--sample-images 16] [--backbone efficientnet_lite0] [--threads N]

For each row count N (N / 784 images of 224 px; crops of three real photographs from
scikit-image's wheel), this project's ``train_model`` runs in full, as ``patchcore
train`` does (CPU, exact, 10 % coreset, 10 % held out for calibration: features, the
calibration bank's coreset, scoring the held-out images, the final coreset); its stages
are timed from its progress callback.

The official code's steps are timed, not run in full (its 10 % coreset of 500k rows
would take hours): feature extraction per image in its layout (NCHW float32 backbone,
Unfold + adaptive pooling to 1024-d) on ``--sample-images`` images, times N / 784; the
projection of N x 1024 rows to 128-d, timed on a slice and scaled; and its greedy loop
(``bench_official_coreset.official_loop``: every pick recomputes every row's distance,
norms included) timed for ``--official-picks`` picks on N projected rows, times
int(0.1 N) picks (each pick costs the same: the loop touches every row every time). It
has no calibration. The ratio official / project is printed from process CPU seconds
(steadier on a shared machine) and from wall seconds.
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
sys.path.insert(0, os.path.dirname(__file__))
from bench_official_coreset import official_loop, official_projection  # noqa: E402
from bench_predict import Clock, set_threads  # noqa: E402
from machine import cpu_name  # noqa: E402

PATCHES_PER_IMAGE = 784


def make_images(n: int, tmp: Path, seed: int = 0) -> list[Path]:
    """``n`` 300 x 300 PNG crops of three real photographs (brick, gravel, grass)."""
    from PIL import Image
    from skimage import data

    photos = [data.brick(), data.gravel(), data.grass()]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        ph = photos[i % len(photos)]
        y, x = rng.integers(0, min(ph.shape[:2]) - 300, 2)
        img = ph[y : y + 300, x : x + 300]
        p = tmp / f"{i:05d}.png"
        Image.fromarray(img).convert("RGB").save(p)
        paths.append(p)
    return paths


def project_train(paths: list[Path], backbone: str) -> dict[str, float]:
    """Run ``train_model`` as ``patchcore train`` does; CPU and wall seconds per stage."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    marks: list[tuple[str, float, float]] = []
    last = [""]

    def progress(stage: str, done: int, total: int) -> None:
        if stage != last[0]:
            marks.append((stage, time.perf_counter(), time.process_time()))
            last[0] = stage

    with Clock() as c:
        model = train_model(paths, TrainConfig(backbone=backbone, coreset=0.1, holdout=0.1), device="cpu",
                            progress=progress)
    end = (time.perf_counter(), time.process_time())
    out: dict[str, float] = {"wall": c.wall, "cpu": c.cpu, "bank_rows": float(model.bank_size)}
    for i, (stage, _w, cpu) in enumerate(marks):
        nxt = marks[i + 1][2] if i + 1 < len(marks) else end[1]
        out[f"cpu {stage}"] = out.get(f"cpu {stage}", 0.0) + nxt - cpu
    return out


def official_features_per_image(paths: list[Path], backbone: str) -> tuple[float, float]:
    """(wall, CPU) seconds per image of the official feature extraction (1024-d layout)."""
    from patchcore_gui.core.backbones import build_extractor, get_spec, official_bn_warmup
    from patchcore_gui.core.features import EmbeddingConfig, _embed_general
    from patchcore_gui.core.preprocess import Preprocess
    from patchcore_gui.io.images import load_image

    spec = get_spec(backbone)
    ext = build_extractor(backbone, spec.default_layers)
    official_bn_warmup(ext, 224)
    pre = Preprocess(256, 224, spec.mean, spec.std)
    with torch.no_grad(), Clock() as c:
        for s in range(0, len(paths), 2):  # the official code's default batch of 2
            x = torch.stack([pre(load_image(p)) for p in paths[s : s + 2]])
            f = ext(x)
            emb, _ = _embed_general([f[la] for la in spec.default_layers], EmbeddingConfig())
            emb.reshape(-1, 1024).clone()
    return c.wall / len(paths), c.cpu / len(paths)


def official_coreset(rows: int, picks: int) -> dict[str, float]:
    """Official loop timings at ``rows`` rows: projection (scaled from a slice) and ms per pick."""
    g = torch.Generator().manual_seed(0)
    sl = min(rows, 65536)
    full = torch.randn(sl, 1024, generator=g)
    with Clock() as c:
        official_projection(full, 0)
    proj = (c.wall * rows / sl, c.cpu * rows / sl)
    del full
    # The loop's cost per pick does not depend on the values (it touches every row each
    # pick), only on the row count: clustered rows, already projected.
    centres = torch.randn(512, 128, generator=g)
    x = centres[torch.randint(0, 512, (rows,), generator=g)] + 0.5 * torch.randn(rows, 128, generator=g)
    starts = np.random.default_rng(0).choice(rows, 10, replace=False)
    official_loop(x, starts, 3)
    with Clock() as c:
        official_loop(x, starts, picks)
    return {"proj_wall": proj[0], "proj_cpu": proj[1], "pick_wall": c.wall / picks, "pick_cpu": c.cpu / picks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[50_000, 160_000, 500_000])
    ap.add_argument("--official-picks", type=int, default=200)
    ap.add_argument("--sample-images", type=int, default=16)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--threads", type=int, default=0, help="torch and faiss threads (0: torch's own choice)")
    args = ap.parse_args()
    set_threads(args.threads)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cpus; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    tmp = Path(tempfile.mkdtemp())
    n_max = -(-max(args.rows) // PATCHES_PER_IMAGE)
    paths = make_images(n_max, tmp)
    f_wall, f_cpu = official_features_per_image(paths[: args.sample_images], args.backbone)
    print(f"official features: {f_cpu * 1e3:.1f} CPU-ms/image ({f_wall * 1e3:.1f} ms wall), "
          f"{args.sample_images} images, extrapolated per size", flush=True)
    results = []
    for rows in args.rows:
        n_img = -(-rows // PATCHES_PER_IMAGE)
        ours = project_train(paths[:n_img], args.backbone)
        off = official_coreset(n_img * PATCHES_PER_IMAGE, args.official_picks)
        picks = int(n_img * PATCHES_PER_IMAGE * 0.1)
        off_cpu = n_img * f_cpu + off["proj_cpu"] + picks * off["pick_cpu"]
        off_wall = n_img * f_wall + off["proj_wall"] + picks * off["pick_wall"]
        stages = ", ".join(f"{k[4:]} {v:.1f}" for k, v in ours.items() if k.startswith("cpu "))
        print(f"{n_img * PATCHES_PER_IMAGE:,} rows ({n_img} images): project {ours['cpu']:.1f} CPU-s "
              f"({ours['wall']:.1f} s wall; {stages}); official {off_cpu:.1f} CPU-s ({off_wall:.1f} s wall; "
              f"features {n_img * f_cpu:.1f}, projection {off['proj_cpu']:.1f}, "
              f"{picks:,} picks x {off['pick_cpu'] * 1e3:.2f} ms from {args.official_picks} timed); "
              f"ratio {off_cpu / ours['cpu']:.1f} x (CPU), {off_wall / ours['wall']:.1f} x (wall); "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        results.append((rows, off_cpu / ours["cpu"]))
    print("summary (official / project, CPU seconds): " + ", ".join(f"{r:,} rows {x:.1f} x" for r, x in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
