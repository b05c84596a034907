"""Import a model saved by the official patchcore-inspection code (docs/patchcore-spec.md section 5).

The reference saves a folder with two files:

* ``patchcore_params.pkl``: a pickle of 8 settings (backbone name, layers, input
  shape, embedding dims, patch size/stride, neighbours);
* ``nnscorer_search_index.faiss``: ``faiss.write_index`` of an ``IndexFlatL2`` that
  holds the memory bank.

Both are read safely by ``core/official_files.py`` (no unpickling of code, no faiss);
this module turns their plain values into a model. The result is a ``PatchCoreModel`` in this
project's own format; nothing of the pickle survives but plain values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from .modelfile import MAX_CROP, MAX_EMBED_DIM, MAX_RESIZE
from .official_files import (
    BACKBONE_NAMES,
    INDEX_FILE,
    MAX_INDEX_DIM,
    MAX_PARAMS_BYTES,
    MAX_PARAMS_DEPTH,
    PARAMS_FILE,
    OfficialImportError,
    RestrictedUnpickler,
    UnsafePickleError,
    check_pickle_opcodes,
    json_plain,
    load_params,
    read_faiss_flat_l2,
    short_repr,
)

# Re-exported: the importer's callers and tests reach the readers through this module.
__all__ = [
    "BACKBONE_NAMES",
    "INDEX_FILE",
    "MAX_INDEX_DIM",
    "MAX_PARAMS_BYTES",
    "MAX_PARAMS_DEPTH",
    "OfficialImportError",
    "PARAMS_FILE",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "check_pickle_opcodes",
    "load_params",
    "read_faiss_flat_l2",
    "import_official",
    "official_config",
    "default_resize",
]

#: Resize that the reference's training command pairs with each crop ("imagesize").
#: The saved model does not record it (docs/patchcore-spec.md section 5).
_RESIZE_FOR_CROP = {224: 256, 320: 366}


# --------------------------------------------------------------------------- settings


def default_resize(crop: int) -> int:
    """The resize the reference pairs with ``crop``: 256 for 224, 366 for 320, else scaled."""
    return _RESIZE_FOR_CROP.get(crop, int(round(crop * 256 / 224)))


def _int_setting(params: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    v = params.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise OfficialImportError(f"{PARAMS_FILE}: {key} must be an integer from {lo} to {hi}, got {short_repr(v)}")
    return v


def official_config(params: Mapping[str, Any], resize: int | None = None) -> Any:
    """This project's ``ModelConfig`` for the reference's settings dict."""
    from .backbones import get_spec
    from .features import EmbeddingConfig
    from .model import ModelConfig

    missing = [k for k in ("backbone.name", "layers_to_extract_from", "input_shape", "pretrain_embed_dimension",
                           "target_embed_dimension", "patchsize", "patchstride", "anomaly_scorer_num_nn")
               if k not in params]
    if missing:
        raise OfficialImportError(f"{PARAMS_FILE}: not patchcore-inspection settings (missing {', '.join(missing)})")
    name = params["backbone.name"]
    if not isinstance(name, str) or name not in BACKBONE_NAMES:
        raise OfficialImportError(
            f"{PARAMS_FILE}: backbone {short_repr(name)} is not supported; importable: {', '.join(BACKBONE_NAMES)}"
        )
    backbone = BACKBONE_NAMES[name]
    spec = get_spec(backbone)
    layers = params["layers_to_extract_from"]
    if (not isinstance(layers, (list, tuple)) or not layers
            or not all(isinstance(x, str) and x in spec.layer_order for x in layers)):
        raise OfficialImportError(
            f"{PARAMS_FILE}: layers {short_repr(layers)} not available for {backbone}; choose from {list(spec.layer_order)}"
        )
    shape = params["input_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in shape)
            or shape[0] != 3 or shape[1] != shape[2] or not 32 <= shape[1] <= MAX_CROP):
        raise OfficialImportError(
            f"{PARAMS_FILE}: input_shape must be (3, N, N) with N from 32 to {MAX_CROP}, got {short_repr(shape)}"
        )
    crop = int(shape[1])
    patch = _int_setting(params, "patchsize", 1, 15)
    if patch % 2 == 0:
        raise OfficialImportError(f"{PARAMS_FILE}: patchsize {patch} is even; only odd patch sizes are supported")
    _int_setting(params, "patchstride", 1, 1)
    k = _int_setting(params, "anomaly_scorer_num_nn", 1, 1024)
    # The same bounds the model file enforces on load, so an import never writes a
    # file that this tool would then refuse to open.
    pre = _int_setting(params, "pretrain_embed_dimension", 1, MAX_EMBED_DIM)
    target = _int_setting(params, "target_embed_dimension", 1, MAX_EMBED_DIM)
    r = default_resize(crop) if resize is None else int(resize)
    if r < crop or r > MAX_RESIZE:
        raise OfficialImportError(f"resize {r} must be at least the crop ({crop}) and at most {MAX_RESIZE}")
    return ModelConfig(
        backbone=backbone,
        layers=tuple(layers),
        embedding=EmbeddingConfig(mode="reference", patch_size=patch, pretrain_dim=pre, target_dim=target),
        resize=r,
        crop=crop,
        mean=spec.mean,
        std=spec.std,
        k=k,
    )


def import_official(
    src: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    resize: int | None = None,
    device: str | torch.device = "auto",
) -> Any:
    """Build a ``PatchCoreModel`` from an official patchcore-inspection model folder.

    The caller is responsible for the user's consent to read a pickle (the CLI's
    ``--trust-pickle``); the pickle is still read with ``load_params``' restrictions.

    Args:
        src: the folder holding ``patchcore_params.pkl`` and ``nnscorer_search_index.faiss``.
        weights: backbone state dict (file or mapping); None searches the hub cache.
        resize: shorter-side resize; None uses the reference's pairing for the crop.
    """
    from .backbones import build_extractor, official_bn_warmup
    from .calibration import uncalibrated
    from .engine import software_versions
    from .model import PatchCoreModel, resolve_device

    folder = Path(src)
    if not folder.is_dir():
        raise OfficialImportError(f"not a folder: {folder}")
    params_path, index_path = folder / PARAMS_FILE, folder / INDEX_FILE
    if not params_path.is_file():
        ensembles = sorted(q.name for q in folder.glob(f"*_{PARAMS_FILE}"))
        if ensembles:
            raise OfficialImportError(
                f"{folder} holds an ensemble ({ensembles[0]}, ...); only single-backbone models can be imported"
            )
        raise OfficialImportError(f"{folder} is not a patchcore-inspection model folder (no {PARAMS_FILE})")
    params = load_params(params_path)
    config = official_config(params, resize)
    bank, digest = read_faiss_flat_l2(index_path)
    if bank.shape[1] != config.embedding.target_dim:
        raise OfficialImportError(
            f"{INDEX_FILE} holds {bank.shape[1]}-d vectors but the settings say target_embed_dimension "
            f"{config.embedding.target_dim}"
        )
    if config.k > bank.shape[0]:
        raise OfficialImportError(f"anomaly_scorer_num_nn {config.k} exceeds the {bank.shape[0]} bank rows")
    dev = resolve_device(device)
    extractor = build_extractor(config.backbone, config.layers, weights)
    produced = config.embedding.output_dim(extractor.channels())
    if produced != bank.shape[1]:
        raise OfficialImportError(f"the settings produce {produced}-d features but the bank has {bank.shape[1]}")
    # The official bank was computed with warmed BatchNorm statistics, and its
    # load_from_path warms a freshly loaded backbone the same way before scoring
    # (docs/patchcore-spec.md, section 1a): without this, imported scores are off by
    # orders of magnitude.
    official_bn_warmup(extractor, config.crop)
    blocks = uncalibrated()
    blocks["threshold"]["rule"] = (
        "none: imported from patchcore-inspection, which stores no threshold; set one by hand"
    )
    source_weights = "state dict" if isinstance(weights, Mapping) else (str(weights) if weights else "hub cache")
    meta: dict[str, Any] = {
        "backbone": config.backbone,
        "layers": list(config.layers),
        "feature_dim": int(bank.shape[1]),
        "patch_size": config.embedding.patch_size,
        "k": config.k,
        "bn_warmup": "official",
        "resize": config.resize,
        "crop": config.crop,
        "normalization": {"mean": list(config.mean), "std": list(config.std)},
        "coreset": {"fraction": None, "method": "unknown (imported)", "rows_kept": int(bank.shape[0])},
        "training": {"image_count": None, "skipped": [], "source": f"imported from {folder.resolve()}"},
        "imported_from": {
            **json_plain(params),
            "source": str(folder.resolve()),
            "faiss_sha256": digest,
            "params_sha256": hashlib.sha256(params_path.read_bytes()).hexdigest(),
            "resize_rule": "given" if resize is not None else "reference pairing for the crop",
            "weights": source_weights,
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": software_versions(),
        "device": str(dev),
        **blocks,
    }
    return PatchCoreModel(config, extractor, torch.from_numpy(bank), meta, device=dev)
