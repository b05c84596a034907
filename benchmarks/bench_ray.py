"""Images per second of ``patchcore predict`` with the local and the Ray engine on the same folder,
one machine (issue 15 point 7: Ray's overhead at 500+ images, and how it scales with workers).

Generates the largest ``--images`` count of textured images (``--size`` px), trains an
EfficientNet-Lite0 model on 16 others at ``--resize`` / ``--crop``, then runs the whole
command, as a user does, in a fresh process per run:

    patchcore predict --model m.patchcore --images FOLDER --output out.csv --run r.pcrun --quiet
        [--engine ray [--workers W | --no-driver-scoring]]

for each folder size (the first N images, hard links) and engine, interleaved round by
round (on a shared machine the load moves by 2x between runs; a ratio is only read
between runs of the same round). Per run:

- end to end: the wall time of the command (process start, imports, model load,
  listing, Ray start, scoring, Ray stop, CSV): what a user waits for;
- once running: images per second from the two folder sizes' walls, (N2 - N1) / (wall2 -
  wall1), where the fixed costs cancel; the fixed cost is then wall1 - N1 / that speed
  (results arrive a block of up to 128 images at a time, so the time between the first
  and the last result says little);
- for Ray, where the start-up goes: ``import ray``, ``ray.init``, Ray Data start to the
  first result (actor start, model load in the actor, first block) and ``ray.shutdown``,
  and how many images the driver scored itself (a local instance's driver scores from
  the last batch back while the replicas start: ``core/ray_lead_in.py``);
- the largest relative score difference from the local engine's (the run files' float32
  scores: the CSV's 6 printed digits alone would differ by up to 5e-6).

The timings inside a run come from this script re-entered as a probe (``--probe``): it
wraps the engine's scorer and Ray's init / shutdown with clocks and calls the CLI's
``entry`` (what the ``patchcore`` script runs) in the same process; nothing else changes.

    .venv/bin/python benchmarks/bench_ray.py [--images 500 1000] [--size 256] [--resize 256]
        [--crop 224] [--workers 2] [--rounds 2] [--passive-local] [--replicas-only]

Ray runs: ``ray`` (the default: no --workers, on 2 cores one replica and the driver),
``ray xW`` (``--workers W``) and, with ``--replicas-only``, ``ray only`` (the default with
``--no-driver-scoring``: a replica per CPU and the driver scoring nothing).

``--passive-local`` adds the local engine with ``OMP_WAIT_POLICY=PASSIVE``, as the Ray
replicas run (on a busy 2-core machine OpenMP's spinning threads slow torch down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_T0 = time.perf_counter()
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from machine import cpu_name  # noqa: E402


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` textured RGB images (smooth noise and stripes), every 10th with a dark blot."""
    from PIL import Image

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


# --------------------------------------------------------------------------- the probe (child process)


def probe(out: str, argv: list[str]) -> int:
    """Run ``patchcore <argv>`` in this process with clocks on the scorer and Ray's start / stop."""
    import contextlib

    from patchcore_gui.cli import entry
    from patchcore_gui.commands import predict_ray
    from patchcore_gui.core import ray_cluster

    marks: dict[str, float] = {"imports": time.perf_counter() - _T0}
    results: list[tuple[float, int]] = []

    def now() -> float:
        return time.perf_counter() - _T0

    def timed(name: str, fn):  # noqa: ANN001, ANN202 - a thin clock around any callable
        def call(*a, **k):  # noqa: ANN002, ANN003, ANN202
            marks[name + " >"] = now()
            try:
                return fn(*a, **k)
            finally:
                marks[name + " <"] = now()
        return call

    real_import_ray = ray_cluster.import_ray

    def import_ray():  # noqa: ANN202
        marks["import ray >"] = now()
        ray = real_import_ray()
        marks["import ray <"] = now()
        ray.init = timed("ray.init", ray.init)
        ray.shutdown = timed("ray.shutdown", ray.shutdown)
        return ray

    ray_cluster.import_ray = import_ray
    real_engine_kwargs = predict_ray.engine_kwargs

    @contextlib.contextmanager
    def engine_kwargs(args, prepare=None):  # noqa: ANN001, ANN202
        with real_engine_kwargs(args, prepare) as kw:
            scorer = kw["scorer"]

            def clocked(*a, **k):  # noqa: ANN002, ANN003, ANN202
                marks["scorer >"] = now()
                for r in scorer(*a, **k):
                    results.append((now(), len(r)))
                    yield r
                marks["driver scored"] = float(getattr(scorer, "driver_scored", 0))
            yield {**kw, "scorer": clocked}

    predict_ray.engine_kwargs = engine_kwargs
    import patchcore_gui.commands.predict as predict_cmd

    predict_cmd.engine_kwargs = engine_kwargs
    predict_cmd._model_for = timed("model load", predict_cmd._model_for)
    rc = entry(argv)  # what the `patchcore` script runs (main, then its quick exit)
    marks["end"] = now()
    Path(out).write_text(json.dumps({"marks": marks, "results": results, "rc": rc}))
    return rc


# --------------------------------------------------------------------------- the benchmark (parent)


def run_cli(argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> tuple[float, dict]:
    """(wall seconds of the command, the probe's clocks)."""
    out = tmp / "probe.json"
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--probe", str(out), "--", *argv],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(out.read_text())


def run_scores(path: Path) -> np.ndarray:
    """The run file's float32 scores (the CSV prints 6 digits: its rounding alone differs by up to 5e-6)."""
    from patchcore_gui.core.run_file import RunFile

    with RunFile.open(path, readonly=True) as rf:
        return rf.columns()["score"].astype(np.float64)


def summarise(n: int, wall: float, info: dict) -> dict[str, float]:
    """Figures of one run from its wall time and clocks."""
    m, res = info["marks"], info["results"]
    first_t = res[0][0]
    last_t = res[-1][0]
    out = {"wall": wall, "rate": n / wall, "first": first_t - m["scorer >"],
           "before": m["scorer >"], "after": wall - last_t, "driver": m.get("driver scored", 0.0)}
    for k in ("import ray", "ray.init", "ray.shutdown", "model load"):
        if f"{k} >" in m:
            out[k] = m[f"{k} <"] - m[f"{k} >"]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe"]:
        return probe(argv[1], argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--workers", type=int, nargs="*", default=[2],
                    help="Ray runs with --workers W, besides the default (no --workers)")
    ap.add_argument("--replicas-only", action="store_true",
                    help="also the default Ray run with --no-driver-scoring (the replicas score everything)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--passive-local", action="store_true",
                    help="also run the local engine with OMP_WAIT_POLICY=PASSIVE (as the Ray replicas run)")
    args = ap.parse_args(argv)

    def load() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    import ray
    import torch

    from patchcore_gui.core.engine import TrainConfig, train_model

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cpus; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"ray {ray.__version__}; load average {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "train").mkdir()
        (tmp / "all").mkdir()
        train = make_images(tmp / "train", 16, args.size, seed=1)
        every = make_images(tmp / "all", max(args.images), args.size, seed=2)
        for n in args.images:
            (tmp / f"n{n}").mkdir()
            for p in every[:n]:
                os.link(p, tmp / f"n{n}" / p.name)
        model = train_model(train, TrainConfig(backbone="efficientnet_lite0", resize=args.resize, crop=args.crop,
                                               coreset=0.1, holdout=0.2), device="cpu", batch_size=8)
        model.save(tmp / "m.patchcore")
        print(f"model: EfficientNet-Lite0, resize {args.resize}, crop {args.crop}, bank {model.bank.shape[0]:,} x "
              f"{model.bank.shape[1]}; images {args.size} x {args.size} px PNG; batch 8", flush=True)
        engines: list[tuple[str, list[str], dict[str, str]]] = [("local", [], {})]
        if args.passive_local:
            engines.append(("local P", [], {"OMP_WAIT_POLICY": "PASSIVE"}))
        engines.append(("ray", ["--engine", "ray"], {}))
        if args.replicas_only:
            engines.append(("ray only", ["--engine", "ray", "--no-driver-scoring"], {}))
        engines += [(f"ray x{w}", ["--engine", "ray", "--workers", str(w)], {}) for w in args.workers]
        best: dict[tuple[int, str], dict[str, float]] = {}
        ratios: dict[tuple[int, str], list[float]] = {}
        for rnd in range(1, args.rounds + 1):
            for n in args.images:
                ref = None
                local_wall = float("nan")
                for name, extra, env in engines:
                    csv = tmp / f"{name.replace(' ', '_')}.csv"
                    run = tmp / f"{name.replace(' ', '_')}_{n}_{rnd}.pcrun"
                    wall, info = run_cli(["predict", "--model", str(tmp / "m.patchcore"), "--images",
                                          str(tmp / f"n{n}"), "--output", str(csv), "--run", str(run), "--quiet",
                                          *extra], tmp, env)
                    s = summarise(n, wall, info)
                    scores = run_scores(run)
                    run.unlink()
                    ref = scores if ref is None else ref
                    ok = np.isfinite(ref)
                    rel = float(np.max(np.abs(scores[ok] - ref[ok]) / np.abs(ref[ok])))
                    if name == "local":
                        local_wall = wall
                    else:
                        ratios.setdefault((n, name), []).append(wall / local_wall - 1)
                    key = (n, name)
                    if key not in best or wall < best[key]["wall"]:
                        best[key] = s
                    ray_part = "".join(f", {k} {s[k]:.1f} s" for k in ("import ray", "ray.init", "ray.shutdown")
                                       if k in s)
                    ray_part += f", driver scored {s['driver']:.0f}" if name.startswith("ray") else ""
                    print(f"round {rnd}, {n} images, {name:8s}: {wall:6.1f} s end to end ({s['rate']:5.2f} img/s"
                          + (f", {(wall / local_wall - 1) * 100:+5.1f} % vs local" if name != "local" else "")
                          + f"); first result {s['first']:.1f} s after the scorer "
                          f"started ({s['before']:.1f} s into the command{ray_part}); after the last "
                          f"{s['after']:.1f} s; max rel. score diff {rel:.1e}; load {load()}", flush=True)
        print(f"best of {args.rounds} rounds (load average now {load()}):")
        for (n, name), s in best.items():
            extra = ""
            if name != "local":
                extra = (f", {(s['wall'] / best[(n, 'local')]['wall'] - 1) * 100:+.1f} % vs best local; "
                         f"per round {', '.join(f'{r * 100:+.1f} %' for r in ratios[(n, name)])}")
            print(f"  {n:5d} images, {name:8s}: {s['wall']:6.1f} s end to end ({s['rate']:5.2f} img/s{extra})")
        sizes = sorted(args.images)
        if len(sizes) >= 2:
            # Per-image speed from the two sizes' best walls (the fixed costs cancel), and the fixed
            # cost that leaves: results arrive a block (up to 128 images) at a time, so the time
            # between the first and the last result is no measure of the engine's own speed.
            lo, hi = sizes[0], sizes[-1]
            print(f"per-image speed from {lo} -> {hi} images, and the fixed cost of a command:")
            for name, _, _ in engines:
                w_lo, w_hi = best[(lo, name)]["wall"], best[(hi, name)]["wall"]
                speed = (hi - lo) / (w_hi - w_lo) if w_hi > w_lo else float("nan")
                print(f"  {name:8s}: {speed:5.2f} img/s once running; fixed cost {w_lo - lo / speed:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
