"""The prepared GPU benchmark must not rot while no GPU is at hand: its --smoke mode runs
every step (real-shaped bank, coreset, both precisions, files and tensors, maps) at tiny
sizes on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_smoke_runs_every_step() -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("coreset 10 % of 3,136 x 1024") for line in lines)
    rows = [line.split(" | ") for line in lines if line.startswith(("bf16 |", "fp32 |"))]
    assert sorted(r[0] for r in rows) == ["bf16", "fp32"]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 and int(r[5]) >= 1 for r in rows)
    diff = [line for line in lines if "bf16 vs fp32 image scores" in line]
    assert diff and float(diff[0].rsplit(" ", 1)[1]) < 1e-2
    assert any(line.startswith("maps on cpu:") for line in lines)
