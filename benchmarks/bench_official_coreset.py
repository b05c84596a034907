"""The official approximate greedy coreset loop, re-implemented from its description, timed
against this project's ``core/coreset.py`` on the same rows.

The official code cannot be fetched here, so its loop is written from the spec's
description (docs/patchcore-spec.md, section 3, "Cost trap"):

* project every row to 128-d with a default-initialised ``nn.Linear(D, 128, bias=False)``;
* 10 random start rows; each row's distance = its MEAN Euclidean distance to them;
* each pick: take the row with the largest distance, then compute the distance of EVERY
  row to the new row from scratch, cdist-style: each row's squared norm again (a batched
  1 x 128 by 128 x 1 product per row), the new row's norm, -2 x the dot products, clamp,
  square root; append that column to the running distance and keep the row-wise minimum.

Nothing is cached between picks (that is the cost the project's version removes). Timing
~50 picks is enough: every pick costs the same, so the 10 % run is extrapolated as
ms/pick x int(N x 0.1). The project's ``greedy_coreset`` runs in full on the same rows.

    .venv/bin/python benchmarks/bench_official_coreset.py [--rows 163856] [--picks 50] [--synthetic]
        [--skip-project] [--check]

``--check`` first runs the loop on 3,000 rows with the project's projection and start
rows and compares its first 300 picks with ``greedy_coreset``'s (the same algorithm, so
they must match), which shows the re-implementation computes what it claims.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from bench_coreset import features  # noqa: E402 - the same real-shaped rows as bench_coreset.py
from machine import cpu_name  # noqa: E402

from patchcore_gui.core.coreset import (  # noqa: E402
    _start_points,
    coreset_size,
    greedy_coreset,
    projection_matrix,
)

PROJECTION_DIM = 128
START_POINTS = 10


def cdist_like(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) Euclidean distances, every norm computed afresh (no caching)."""
    aa = torch.bmm(a.unsqueeze(1), a.unsqueeze(2)).reshape(-1, 1)
    bb = torch.bmm(b.unsqueeze(1), b.unsqueeze(2)).reshape(1, -1)
    return (aa + bb - 2.0 * (a @ b.T)).clamp(min=0.0).sqrt()


def official_loop(x: torch.Tensor, starts: np.ndarray, picks: int,
                  on_pick: object = None) -> list[int]:
    """``picks`` greedy picks over projected rows ``x`` from ``starts`` (see module docstring)."""
    dist = cdist_like(x, x[torch.as_tensor(starts)]).mean(dim=1, keepdim=True)
    chosen: list[int] = []
    for _ in range(picks):
        j = int(torch.argmax(dist))
        chosen.append(j)
        new = cdist_like(x, x[j : j + 1])
        dist = torch.min(torch.cat([dist, new], dim=1), dim=1).values.reshape(-1, 1)
        if callable(on_pick):
            on_pick()
    return chosen


def official_projection(rows: torch.Tensor, seed: int) -> torch.Tensor:
    """Rows through a default-initialised ``nn.Linear(D, 128, bias=False)`` (uniform +-1/sqrt(D))."""
    torch.manual_seed(seed)
    mapper = torch.nn.Linear(rows.shape[1], PROJECTION_DIM, bias=False)
    out = torch.empty(rows.shape[0], PROJECTION_DIM)
    with torch.no_grad():
        for i in range(0, rows.shape[0], 65536):
            out[i : i + 65536] = mapper(rows[i : i + 65536])
    return out


def check() -> bool:
    """The loop with the project's projection and starts must pick what greedy_coreset picks."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(64, 256, generator=g) * 3
    rows = centres[torch.randint(0, 64, (3000,), generator=g)] + torch.randn(3000, 256, generator=g)
    # float64 here: in float32 the loop's own rounding resolves near-ties (3e-7 relative
    # apart at pick 247 of this data) differently from the project's exact-order sums.
    x = (rows @ projection_matrix(256, 0)).double()
    ours = official_loop(x, _start_points(3000, 0), 300)
    project = greedy_coreset(rows, 0.1, seed=0)[:300].tolist()
    same = ours == project
    print(f"check: first 300 picks on 3,000 x 256 rows equal greedy_coreset's: {same}")
    return same




def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=163_856)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--picks", type=int, default=50, help="official-loop picks to time (then extrapolated)")
    ap.add_argument("--synthetic", action="store_true", help="clustered Gaussian rows (faster to make)")
    ap.add_argument("--skip-project", action="store_true", help="time only the official loop")
    ap.add_argument("--check", action="store_true", help="first compare the loop with greedy_coreset on small data")
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    if args.check and not check():
        return 1
    t = time.perf_counter()
    rows = features(args.rows, args.synthetic)
    print(f"features {tuple(rows.shape)} made in {time.perf_counter() - t:.1f} s "
          f"({'synthetic' if args.synthetic else 'WR50 random weights on brick crops, as bench_coreset.py'})")
    total = coreset_size(args.rows, args.fraction)

    t = time.perf_counter()
    x = official_projection(rows, 0)
    starts = np.random.default_rng(0).choice(args.rows, START_POINTS, replace=False)
    setup = time.perf_counter() - t
    warm = 3
    official_loop(x, starts, warm)  # first calls allocate; not timed
    stamps: list[float] = []
    cpu0 = time.process_time()
    official_loop(x, starts, args.picks, on_pick=lambda: stamps.append(time.perf_counter()))
    # Process CPU time (all threads) per pick: less sensitive than wall time to other jobs.
    cpu_pick = (time.process_time() - cpu0) / max(1, args.picks)
    steps = np.diff(np.array(stamps))
    per_pick = float(np.median(steps)) if len(steps) else float("nan")
    mean_pick = float(steps.mean()) if len(steps) else float("nan")
    est = setup + per_pick * total
    print(f"official loop: projection + start distances {setup:.2f} s; {args.picks} picks timed: "
          f"median {per_pick * 1e3:.1f} ms/pick (mean {mean_pick * 1e3:.1f}; CPU {cpu_pick * 1e3:.1f} ms/pick); "
          f"{total:,} picks ({args.fraction:g}) -> {est:.0f} s ({est / 60:.1f} min) extrapolated")
    print(f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.skip_project:
        return 0
    t, cpu0 = time.perf_counter(), time.process_time()
    picks = greedy_coreset(rows, args.fraction, seed=0)
    ours, ours_cpu = time.perf_counter() - t, time.process_time() - cpu0
    print(f"project greedy_coreset: {len(picks):,} picks in {ours:.1f} s ({ours / len(picks) * 1e3:.2f} ms/pick; "
          f"CPU {ours_cpu:.1f} s)")
    print(f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"ratio official / project: {est / ours:.1f} x wall time, "
          f"{cpu_pick * total / max(ours_cpu, 1e-9):.1f} x CPU time (trust the latter on a busy machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
