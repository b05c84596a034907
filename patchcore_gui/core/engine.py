"""The batch engine: a plain generator for prediction, and training from good images.

``iter_predict`` is what the CLI, the tests and the GUI's worker all run: one
``BatchResult`` per DataLoader batch, a ``threading.Event`` checked between batches,
unreadable images turned into error rows. Nothing here imports Qt.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .backbones import BN_WARMUP_CHOICES, build_extractor, get_spec, official_bn_warmup
from .batching import AdaptiveScorer, Prefetcher, default_batch_size, default_num_workers
from .calibration import calibrate, check_rate, uncalibrated
from .coreset import CancelledError, greedy_coreset
from .datasets import ImageSet
from .image_dataset import ImageDataset, collate
from .model import (
    ModelConfig,
    PatchCoreModel,
    resolve_device,
    resolve_precision,
)
from .out_of_bank import out_of_bank_scores
from .precision import backbone_dtype, fast_backbone
from .provenance import bank_source_from_selection
from .results import BatchResult, work_list
from .train_config import DEFAULT_EMBEDDING, TrainConfig, embedding_for, resolve_crop  # noqa: F401  (re-exported)
from .train_meta import file_list_sha256, model_meta, software_versions  # noqa: F401  (re-exported)
from .training_pictures import attach_pictures

#: progress(stage, done, total); stages in order: "features", "coreset" (the final bank),
#: "calibration" (each training image scored without its own bank rows).
Progress = Callable[[str, int, int], None]


def make_loader(
    dataset: ImageDataset,
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | None = None,
) -> DataLoader:
    """A DataLoader over ``dataset`` with our collate; workers use "spawn" (safe beside Qt)."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["multiprocessing_context"] = multiprocessing.get_context("spawn")
        kwargs["persistent_workers"] = False
    return DataLoader(
        dataset,
        batch_size=max(1, int(batch_size)),
        shuffle=False,
        num_workers=max(0, int(num_workers)),
        collate_fn=collate,
        pin_memory=bool(device is not None and device.type == "cuda"),
        **kwargs,
    )


def iter_predict(
    model: PatchCoreModel,
    images: Sequence[str | os.PathLike[str]] | ImageSet,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    batch_size: int | None = 8,
    num_workers: int | None = 0,
    cancel: threading.Event | None = None,
    grid_dtype: type = np.float16,
    skip: Sequence[int] | None = None,
) -> Iterator[BatchResult]:
    """Score images batch by batch; yields one ``BatchResult`` per batch.

    Args:
        images: image paths, or an ``ImageSet`` (its labels are used).
        labels: ground truth per image when ``images`` is a plain list.
        cancel: when set, the generator stops before the next batch (the batch in
            flight is finished and yielded first, so nothing already computed is lost).
        grid_dtype: dtype of the patch-score grids in results (float16 keeps the GUI at
            ~1.5 kB per image; use float32 for maps at full precision).
        skip: indices not to score (already done, e.g. when resuming a run).
        batch_size: images per batch; None chooses it (fixed on the CPU, from free
            memory on CUDA). A CUDA out-of-memory error halves it for the rest of the run.
        num_workers: DataLoader processes decoding images; None: 0 on the CPU (the
            two-core machines this runs on need both cores for the model), up to 8 on CUDA.
    """
    paths, lab, todo = work_list(images, labels, skip)
    dataset = ImageDataset([paths[i] for i in todo], model.preprocess)
    if batch_size is None:
        batch_size = default_batch_size(model)
    if num_workers is None:
        num_workers = default_num_workers(model.device)
    loader = make_loader(dataset, batch_size, num_workers, model.device)
    score = AdaptiveScorer(model)
    grid_shape: tuple[int, int] | None = None
    # Without worker processes, one thread decodes the next batch while this one
    # computes: PIL's decoding and resizing release the GIL, and on two cores they fill
    # the gaps torch's pool leaves (single-threaded steps, Python between operators).
    it = iter(loader) if num_workers > 0 else Prefetcher(loader)
    try:
        while True:
            if cancel is not None and cancel.is_set():
                return
            try:
                batch = next(it)
            except StopIteration:
                return
            errors = list(batch["error"])
            ok = np.array([not e for e in errors], dtype=bool)
            b = len(errors)
            scores = np.full(b, np.nan, dtype=np.float32)
            grids: np.ndarray | None = None
            if ok.any():
                imgs = batch["image"][torch.from_numpy(ok)] if not ok.all() else batch["image"]
                s, g = score(imgs)
                grid_shape = g.shape[1:]
                scores[ok] = s
                grids = np.full((b, *grid_shape), np.nan, dtype=grid_dtype)
                grids[ok] = g.astype(grid_dtype)
            if grids is None:
                gs = grid_shape or patch_grid_shape(model)
                grids = np.full((b, *gs), np.nan, dtype=grid_dtype)
            idx = todo[batch["index"].numpy()]
            yield BatchResult(
                indices=idx.astype(np.int64),
                paths=[paths[i] for i in idx],
                scores=scores,
                grids=grids,
                errors=errors,
                labels=lab[idx],
            )
    finally:
        # Shut loader workers (or the prefetch thread) down promptly when the consumer
        # stops early (cancel, close).
        if isinstance(it, Prefetcher):
            it.close()
        del it


def patch_grid_shape(model: PatchCoreModel) -> tuple[int, int]:
    """Patch grid shape for this model's crop (computed once with a blank image)."""
    if model._grid is None:
        _, g = model.score_tensor(torch.zeros(1, 3, model.config.crop, model.config.crop))
        model._grid = tuple(g.shape[1:])  # type: ignore[assignment]
    return model._grid  # type: ignore[return-value]


# --------------------------------------------------------------------------- training


def extract_features(
    model_cfg: ModelConfig,
    extractor: torch.nn.Module,
    paths: Sequence[str],
    device: torch.device,
    batch_size: int,
    num_workers: int,
    progress: Progress | None,
    cancel: threading.Event | None,
    precision: str = "exact",
) -> tuple[torch.Tensor, list[str], list[tuple[str, str]], tuple[int, int]]:
    """Patch features of all readable images: (n_ok, h*w, D) on the CPU, ok paths, skipped."""
    shell = PatchCoreModel.__new__(PatchCoreModel)  # embed() only needs these attributes
    shell.config, shell.extractor, shell.device = model_cfg, extractor, device
    shell.precision = precision
    shell._half_dtype = backbone_dtype(precision, device)
    shell._fast_extractor = fast_backbone(extractor, precision)
    loader = make_loader(ImageDataset(paths, model_cfg.preprocess), batch_size, num_workers, device)
    chunks: list[torch.Tensor] = []
    ok_paths: list[str] = []
    skipped: list[tuple[str, str]] = []
    grid = (0, 0)
    done = 0
    for batch in loader:
        if cancel is not None and cancel.is_set():
            raise CancelledError("training cancelled")
        good = [i for i, e in enumerate(batch["error"]) if not e]
        skipped.extend((batch["path"][i], e) for i, e in enumerate(batch["error"]) if e)
        if good:
            feats, grid = PatchCoreModel.embed(shell, batch["image"][good])
            chunks.append(feats.to("cpu", torch.float32))
            ok_paths.extend(batch["path"][i] for i in good)
        done += len(batch["error"])
        if progress:
            progress("features", done, len(paths))
    if not chunks:
        raise ValueError("no readable training images" + (f" (first error: {skipped[0][1]})" if skipped else ""))
    return torch.cat(chunks), ok_paths, skipped, grid


def train_model(
    paths: Sequence[str | os.PathLike[str]],
    cfg: TrainConfig | None = None,
    *,
    weights: str | os.PathLike[str] | dict[str, torch.Tensor] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    num_workers: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    source: str = "",
) -> PatchCoreModel:
    """Train a PatchCore model from good images (docs/patchcore-spec.md section 2-3) with calibration.

    The final memory bank is built from all readable images, so scores match the
    reference for the same images; calibration then scores every training image against
    that bank without its own rows (features are reused) and sets the thresholds at the
    stated false-reject rate.
    """
    cfg = resolve_crop(cfg or TrainConfig())
    dev = resolve_device(device)
    spec = get_spec(cfg.backbone)
    precision = _check_train_config(cfg, dev)
    str_paths = [os.fspath(p) for p in paths]
    if not str_paths:
        raise ValueError("no training images")
    model_cfg = ModelConfig(
        backbone=cfg.backbone,
        layers=tuple(cfg.layers or spec.default_layers),
        embedding=embedding_for(cfg),
        resize=cfg.resize,
        crop=cfg.crop,
        mean=spec.mean,
        std=spec.std,
        k=cfg.k,
        reweight=cfg.reweight,
        crop_mode=cfg.crop_mode,
    )
    extractor = build_extractor(cfg.backbone, model_cfg.layers, weights).to(dev).eval()
    if cfg.bn_warmup == "official":
        # After the weights load and before any feature, as the official code does; the
        # warmed buffers are saved with the backbone, so prediction needs no extra step.
        official_bn_warmup(extractor, cfg.crop)
    feats, ok_paths, skipped, grid = extract_features(
        model_cfg, extractor, str_paths, dev, batch_size, num_workers, progress, cancel, precision
    )
    n_img, per_img, dim = feats.shape
    flat = feats.reshape(n_img * per_img, dim)

    def coreset_progress(done: int, total: int) -> None:
        if progress:
            progress("coreset", done, total)

    sel = greedy_coreset(flat, cfg.coreset, cfg.seed, dev, coreset_progress, cancel)
    bank = flat[torch.from_numpy(np.asarray(sel))].contiguous()
    source_rows = bank_source_from_selection(sel, per_img)
    blocks = _calibration_blocks(feats, bank, source_rows[:, 0], grid, cfg, dev, progress, cancel)
    meta = model_meta(cfg, model_cfg, precision, dev, grid, flat.shape[0], int(dim), ok_paths, skipped, source)
    return attach_pictures(PatchCoreModel(model_cfg, extractor, bank, {**meta, **blocks}, device=dev,  # issue 14
                                          bank_source=source_rows), ok_paths)


def _check_train_config(cfg: TrainConfig, dev: torch.device) -> str:
    """Refuse a training configuration that cannot work; returns the resolved precision name."""
    if not 0.0 < cfg.coreset <= 1.0:
        raise ValueError(f"--coreset must be in (0, 1], got {cfg.coreset}")
    check_rate(cfg.false_reject, "--false-reject")
    precision = resolve_precision(cfg.precision, dev)  # unknown names and unsupported half raise
    if cfg.reweight < 0:
        raise ValueError(f"--reweight must be 0 (off) or a neighbour count, got {cfg.reweight}")
    if cfg.k < 1:
        raise ValueError(f"--k must be at least 1, got {cfg.k}")
    if cfg.bn_warmup not in BN_WARMUP_CHOICES:
        raise ValueError(f"--bn-warmup must be one of {', '.join(BN_WARMUP_CHOICES)}, got {cfg.bn_warmup!r}")
    if cfg.crop < 32 or cfg.resize < 0 or (cfg.resize and cfg.resize < cfg.crop):
        raise ValueError(f"need crop >= 32 and resize >= crop (or 0), got resize {cfg.resize}, crop {cfg.crop}")
    return precision


def _calibration_blocks(
    feats: torch.Tensor,
    bank: torch.Tensor,
    bank_image: np.ndarray,
    grid: tuple[int, int],
    cfg: TrainConfig,
    dev: torch.device,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> dict[str, Any]:
    """The calibration and threshold metadata: every training image's out-of-bank score
    (``core.out_of_bank``), thresholds at ``cfg.false_reject`` (``core.calibration``).

    Calibration off (``cfg.calibrate`` False) or a single training image (nothing to
    score it against) gives the uncalibrated blocks, which say why.
    """
    if not cfg.calibrate or cfg.holdout == 0:
        return uncalibrated("trained without calibration (--holdout 0)")
    if feats.shape[0] < 2:
        return uncalibrated("one training image: no other image's rows to score it against")

    def calib_progress(done: int, total: int) -> None:
        if progress:
            progress("calibration", done, total)

    scores, maxima = out_of_bank_scores(feats, bank, bank_image, grid, cfg.k, cfg.reweight, cfg.crop, dev,
                                        calib_progress, cancel)
    return calibrate(scores, maxima, cfg.false_reject, {"k": cfg.k, "reweight": cfg.reweight})


def image_paths_for_training(root: str | os.PathLike[str]) -> list[Path]:
    """Training images under ``root``: ``train/good`` in the MVTec layout, else all images."""
    from .datasets import mvtec_train_paths

    return mvtec_train_paths(root)
