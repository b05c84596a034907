"""Run every benchmark once with small, quick arguments (``make bench``); exit 1 if one fails.

This checks that each script still runs end to end and prints its figures; the sizes
are far below the ones docs/performance.md quotes, so the numbers printed here are not
the documented measurements (each script's docstring gives the full command).
``--full`` runs every script with its own defaults instead (hours on a 2-core CPU).

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--full] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, quick arguments, time limit in seconds for the quick run).
BENCHMARKS: list[tuple[str, list[str], int]] = [
    ("bench_coreset.py", ["--rows", "8000", "--synthetic", "--check"], 600),
    ("bench_official_coreset.py", ["--rows", "8000", "--picks", "10", "--synthetic", "--check"], 600),
    ("bench_predict.py", ["--images", "4", "--batch-size", "2", "--bank", "2048", "--rounds", "1"], 900),
    ("bench_report.py", ["--images", "20", "--size", "64"], 600),
    ("bench_drift.py", ["--sizes", "1000", "100000", "--rounds", "2"], 300),
    ("bench_memory.py", ["--images", "1000", "--batch-size", "64"], 900),
    ("bench_gui_threshold.py", ["--rows", "5000", "--moves", "5"], 600),
    ("bench_million_rows.py", ["--rows", "5000", "--moves", "5"], 600),
    ("bench_ray.py", ["--images", "24", "--rounds", "1", "--workers", "1"], 900),
    ("bench_gpu.py", ["--smoke"], 600),
    ("bench_fast_accuracy.py", ["--sources", "brick", "--embeddings", "native"], 1800),
    ("parity_report.py", [], 900),
]


def run_one(script: str, args: list[str], limit: int) -> tuple[str, float]:
    """Run one script with the same interpreter; returns (outcome, seconds)."""
    cmd = [sys.executable, str(HERE / script), *args]
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    t = time.perf_counter()
    try:
        rc = subprocess.run(cmd, cwd=HERE.parent, timeout=limit, check=False).returncode
    except subprocess.TimeoutExpired:
        return f"timed out after {limit} s", time.perf_counter() - t
    return ("ok" if rc == 0 else f"exit {rc}"), time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME",
                    help="run only these scripts (file names, with or without .py)")
    ap.add_argument("--full", action="store_true", help="each script's own default sizes, no time limit")
    ap.add_argument("--list", action="store_true", help="print the scripts and their quick arguments")
    a = ap.parse_args()
    chosen = BENCHMARKS
    if a.only:
        want = {n if n.endswith(".py") else n + ".py" for n in a.only}
        unknown = want - {b[0] for b in BENCHMARKS}
        if unknown:
            print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        chosen = [b for b in BENCHMARKS if b[0] in want]
    if a.list:
        for script, args, _ in chosen:
            print(f"{script} {' '.join(args)}")
        return 0
    missing = [s for s, _, _ in chosen if not (HERE / s).is_file()]
    if missing:
        print(f"missing benchmark script(s): {', '.join(missing)}", file=sys.stderr)
        return 1
    results = []
    for script, args, limit in chosen:
        outcome, secs = run_one(script, [] if a.full else args, 10**7 if a.full else limit)
        results.append((script, outcome, secs))
    print("\nbenchmark                     outcome              seconds")
    for script, outcome, secs in results:
        print(f"{script:<29} {outcome:<20} {secs:7.1f}")
    failed = [s for s, o, _ in results if o != "ok"]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
