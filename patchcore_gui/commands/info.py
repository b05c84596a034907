"""``patchcore info MODEL``: a model file's metadata as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import EXIT_OK, json_safe


def register(subparsers: Any) -> None:
    """Add the ``info`` sub-command."""
    info = subparsers.add_parser("info", help="print a model file's metadata")
    info.add_argument("model")
    info.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Print the metadata (calibration scores and the training file list left out) with the
    bank's shape, the provenance line and the file's size."""
    from ..core.model import bn_warmup_label
    from ..core.modelfile import BANK_SOURCE_KEY, EXTRA_PREFIX, read_model_file
    from ..core.provenance import provenance_note
    from ..core.thresholds import threshold_summary

    tensors, meta = read_model_file(args.model)
    bank = tensors["memory_bank"]
    info = dict(meta)
    if isinstance(info.get("calibration"), dict):  # a copy: meta's own block keeps its scores
        info["calibration"] = {k: v for k, v in info["calibration"].items() if k not in ("scores", "map_maxima_values")}
    # The per-file list (path + SHA-256 each) is long; its presence is summarised instead.
    if isinstance(info.get("training"), dict) and "files" in info["training"]:
        info["training"] = {**info["training"], "files": f"{len(info['training']['files'])} recorded"}
    info["provenance"] = provenance_note(meta, BANK_SOURCE_KEY in tensors)
    info["threshold_summary"] = threshold_summary(meta)  # rule, rate, count, review band, last changes
    extras = sorted(k[len(EXTRA_PREFIX):] for k in tensors if k.startswith(EXTRA_PREFIX))
    if extras:
        info["extra_tensors"] = {k: list(tensors[EXTRA_PREFIX + k].shape) for k in extras}
    info["memory_bank"] = {"rows": int(bank.shape[0]), "dims": int(bank.shape[1]), "dtype": str(bank.dtype)}
    info["backbone_tensors"] = sum(1 for k in tensors if k.startswith("backbone."))
    info["bn_warmup_summary"] = bn_warmup_label(meta)
    info["crop_summary"] = _crop_summary(meta)
    info["file"] = str(Path(args.model).resolve())
    info["file_bytes"] = Path(args.model).stat().st_size
    print(json.dumps(json_safe(info), indent=2, sort_keys=True))
    return EXIT_OK


def _crop_summary(meta: dict[str, Any]) -> str:
    """What the model inspects (``train --crop none``: the whole image); old files: the centre crop."""
    from ..core.model_config import ModelConfig

    try:
        return ModelConfig.from_json(meta["config"]).preprocess.coverage_note()
    except (KeyError, TypeError, ValueError):
        return "unknown (the metadata has no usable configuration)"
