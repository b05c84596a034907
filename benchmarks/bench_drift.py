"""Cost of one drift check (core/drift.py) on runs of 1k to 1M scores, and of the window's
live check, which reads at most ``qt.drift_banner.LIVE_SAMPLE`` scores spread over the run.

    .venv/bin/python benchmarks/bench_drift.py [--sizes 1000 100000 1000000] [--rounds 5]

Prints the best of ``--rounds`` per size, with the CPU's name (the window checks at most
once a second during a run, on its GUI thread: a check must stay well under a frame).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import cpu_name

from patchcore_gui.core.drift import check_drift

#: The window's live sample (qt/drift_banner.LIVE_SAMPLE; not imported: no Qt here).
LIVE_SAMPLE = 100_000


def best_ms(scores: np.ndarray, cal: np.ndarray, labels: np.ndarray, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        check_drift(scores, cal, labels)
        times.append(time.perf_counter() - t0)
    return 1000.0 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cal = 500.0 + 60.0 * rng.gumbel(size=1000)
    print(f"CPU: {cpu_name()}")
    for n in args.sizes:
        scores = (500.0 + 60.0 * rng.gumbel(size=n)).astype(np.float32)
        labels = np.where(np.arange(n) % 7 == 0, 1, 0).astype(np.int8)
        full = best_ms(scores, cal, labels, args.rounds)
        step = -(-n // LIVE_SAMPLE)
        live = best_ms(scores[::step], cal, labels[::step], args.rounds)
        print(f"{n:>9,} scores: full check {full:7.2f} ms, live check ({len(scores[::step]):,} read) {live:6.2f} ms")


if __name__ == "__main__":
    main()
