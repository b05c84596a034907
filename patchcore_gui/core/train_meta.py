"""The model file's training metadata: what a reader needs to trust a trained model.

Settings, coreset sizes, the training file list (paths and SHA-256, ``provenance``),
software versions, device and time. Calibration and thresholds are added beside it by
``core.calibration``.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from .. import __version__
from .coreset import coreset_size
from .model_config import ModelConfig
from .provenance import training_file_records
from .train_config import TrainConfig


def file_list_sha256(paths: Sequence[str | os.PathLike[str]]) -> str:
    """SHA-256 of the sorted training file names (one per line), for traceability."""
    h = hashlib.sha256()
    for p in sorted(os.fspath(x) for x in paths):
        h.update(p.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    import faiss
    import torchvision

    return {
        "patchcore_gui": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "faiss": getattr(faiss, "__version__", "?"),
    }


def model_meta(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    precision: str,
    dev: torch.device,
    grid: tuple[int, int],
    rows_before: int,
    dim: int,
    ok_paths: Sequence[str],
    skipped: Sequence[tuple[str, str]],
    source: str,
) -> dict[str, Any]:
    """The model file's metadata block (everything but calibration): what a reader needs to trust it."""
    return {
        "backbone": cfg.backbone,
        "layers": list(model_cfg.layers),
        "feature_dim": dim,
        "patch_size": model_cfg.embedding.patch_size,
        "k": cfg.k,
        "reweight": cfg.reweight,
        "precision": precision,
        "bn_warmup": cfg.bn_warmup,
        "resize": cfg.resize,
        "crop": cfg.crop,
        "crop_mode": cfg.crop_mode,
        "normalization": {"mean": list(model_cfg.mean), "std": list(model_cfg.std)},
        "grid": list(grid),
        "coreset": {
            "fraction": cfg.coreset,
            "seed": cfg.seed,
            "method": "identity" if cfg.coreset >= 1.0 else "approximate_greedy",
            "rows_before": int(rows_before),
            "rows_kept": int(coreset_size(rows_before, cfg.coreset)),
        },
        "training": {
            "image_count": len(ok_paths),
            "file_list_sha256": file_list_sha256(ok_paths),
            # Index i is bank_source's image i: only readable images, in feature order.
            "files": training_file_records(ok_paths, source or None),
            "skipped": [{"path": p, "error": e} for p, e in skipped],
            "source": source,
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": software_versions(),
        "device": str(dev),
    }
