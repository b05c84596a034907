"""Images per second of the local engine and of ``--engine ray`` on the same folder, one machine
(issue 15 point 7: Ray's overhead at 500+ images, and how it scales with workers).

Generates ``--images`` textured images (``--size`` px), trains an EfficientNet-Lite0
model on 16 of them at ``--resize`` / ``--crop`` (small: the figures are about the
engines, not the backbone), then scores the folder:

- local: ``engine.iter_predict`` as ``patchcore predict`` runs it (prefetch thread, torch
  on all cores);
- ray, for each worker count: a local Ray instance (started once; its start-up is
  printed apart), ``RayScorer`` as ``patchcore predict --engine ray`` runs it. Per run:
  end to end (actor start and model load included), the time to the first result, and
  the largest relative score difference from the local engine.

``--rounds`` repeats local and Ray runs interleaved and keeps the best of each: on a
shared machine the load moves by 2x between runs.

On a 2-core machine, workers 1 is the default (one actor with both cores for torch,
one CPU reserved for Ray); workers 2 gives each actor one core.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_ray.py [--images 600] [--size 160]
        [--resize 146] [--crop 128] [--batch-size 8] [--workers 1 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from machine import cpu_name  # noqa: E402
from PIL import Image  # noqa: E402


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` textured RGB images (smooth noise and stripes), every 10th with a dark blot."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    paths = []
    for i in range(n):
        base = 120 + 40 * np.sin(xx / (6 + i % 5) + rng.uniform(0, 6)) * np.cos(yy / 9)
        img = np.clip(base[..., None] + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        if i % 10 == 9:
            y, x = rng.integers(10, size - 30, 2)
            img[y : y + 20, x : x + 20] //= 3
        p = folder / f"img_{i:05d}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--resize", type=int, default=146)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2, help="local and ray runs interleaved, best of each")
    args = ap.parse_args(argv)

    import ray
    import torch

    from patchcore_gui.core.engine import TrainConfig, iter_predict, train_model
    from patchcore_gui.core.model import PatchCoreModel
    from patchcore_gui.core.ray_cluster import RayOptions, plan_cluster
    from patchcore_gui.core.ray_engine import RayScorer

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cpus; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"torch {torch.get_num_threads()} threads; ray {ray.__version__}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        (root / "test").mkdir()
        train = make_images(root / "train", 16, args.size, seed=1)
        paths = make_images(root / "test", args.images, args.size, seed=2)
        model = train_model(train, TrainConfig(backbone="efficientnet_lite0", resize=args.resize, crop=args.crop,
                                               coreset=0.1, holdout=0.2), device="cpu", batch_size=8)
        model.save(root / "m.patchcore")
        model = PatchCoreModel.load(root / "m.patchcore", device="cpu")
        print(f"model: EfficientNet-Lite0, resize {args.resize}, crop {args.crop}, bank {model.bank.shape[0]:,} x "
              f"{model.bank.shape[1]}; {args.images} images of {args.size} x {args.size} px; batch {args.batch_size}")

        def score(scorer: object) -> tuple[np.ndarray, float, float, int]:
            """(scores, seconds in all, seconds to the first result, images in the first result)."""
            s = np.full(len(paths), np.nan, dtype=np.float32)
            t0 = time.perf_counter()
            first, n_first = None, 0
            for r in scorer(model, paths, batch_size=args.batch_size, num_workers=0):  # type: ignore[operator]
                s[r.indices] = r.scores
                if first is None:
                    first, n_first = time.perf_counter() - t0, len(r)
            return s, time.perf_counter() - t0, first or 0.0, n_first

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        print(f"ray.init (local instance, {os.cpu_count()} CPUs): {time.perf_counter() - t0:.1f} s "
              "(patchcore predict --engine ray pays it once per command)")
        ref = None
        times: dict[str, list[float]] = {}
        try:
            # Rounds interleave the engines: on a shared machine the load moves between runs.
            for rnd in range(args.rounds):
                got, t, _, _ = score(iter_predict)
                ref = got if ref is None else ref
                times.setdefault("local", []).append(t)
                print(f"round {rnd + 1}: local engine {t:6.1f} s, {len(paths) / t:6.2f} images/s", flush=True)
                for workers in args.workers:
                    plan = plan_cluster(ray, RayOptions(workers=workers))
                    got, t, first, n_first = score(RayScorer(ray, plan, "cpu"))
                    after = (len(paths) - n_first) / (t - first) if t > first else float("nan")
                    ok = np.isfinite(ref)
                    rel = float(np.max(np.abs(got[ok].astype(np.float64) - ref[ok]) / np.abs(ref[ok])))
                    key = f"ray, {workers} worker(s) x {plan.threads} torch thread(s)"
                    times.setdefault(key, []).append(t)
                    print(f"round {rnd + 1}: {key}: {t:6.1f} s end to end, {len(paths) / t:6.2f} images/s "
                          f"({first:.1f} s to the first result of {n_first}: actor start, model load, first "
                          f"block; {after:.2f} images/s after it); max rel. score diff vs local {rel:.1e}",
                          flush=True)
        finally:
            ray.shutdown()
        base = min(times["local"])
        print(f"best of {args.rounds} (load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
        for key, ts in times.items():
            print(f"  {key}: {min(ts):6.1f} s, {len(paths) / min(ts):6.2f} images/s "
                  f"({(min(ts) / base - 1) * 100:+.0f} % time vs local)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
