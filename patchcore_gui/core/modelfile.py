"""The model file: one safetensors file holding the bank, the backbone weights and JSON metadata.

Nothing here unpickles. The header is validated by hand before any tensor is read, so a
truncated, tampered, foreign or hostile file is rejected with one line that names the
file and the problem, without large allocations.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes

FORMAT_NAME = "patchcore_gui.model"
#: 2: the backbone's BatchNorm buffers carry the official warm-up (or say they do not:
#: metadata ``bn_warmup``). Format-1 files predate the warm-up and are read as "none".
#: Provenance (``bank_source``, ``training.files``) and extra tensors are optional
#: additions, not a new format: a format-2 reader without them still reads such a file
#: correctly (it ignores tensors it does not know; the checksum covers them all).
FORMAT_VERSION = 2
#: What ``bn_warmup`` may say (backbones.BN_WARMUP_CHOICES; not imported: no torch models here).
BN_WARMUP_VALUES = ("official", "none")
#: The note a format-1 file gets on reading, kept if the model is saved again.
LEGACY_BN_NOTE = "made before format 2 (PatchCore Inspector 0.1)"
#: Key of our JSON document inside safetensors' ``__metadata__``.
META_KEY = "patchcore_gui"
BANK_KEY = "memory_bank"
BACKBONE_PREFIX = "backbone."
#: (bank_rows, 2) int32: [training image index, patch index in the row-major grid].
BANK_SOURCE_KEY = "bank_source"
#: Free slot for tensors other features keep in the model file (``PatchCoreModel.extra_tensors``).
EXTRA_PREFIX = "extra/"
#: A real header is a few hundred kB at most; anything far larger is hostile or corrupt.
MAX_HEADER_BYTES = 64 * 1024 * 1024

_DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "F64": (torch.float64, 8),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}


class ModelFileError(Exception):
    """A model file cannot be used; ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


def tensor_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(json.dumps(list(t.shape)).encode())
        # View as bytes: works for every dtype (bfloat16 has no numpy equivalent).
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_model_file(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Write tensors + metadata atomically; returns the metadata as stored (with checksum)."""
    from safetensors.torch import save

    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = dict(meta)
    meta["format"] = FORMAT_NAME
    meta["format_version"] = FORMAT_VERSION
    meta["tensor_sha256"] = tensor_checksum(clean)
    data = save(clean, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        # Disk full, read-only medium, no permission: atomic_write_bytes has already
        # removed its temporary file, so the previous model (if any) is untouched.
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(path, f"cannot write the model file: {reason} (nothing was changed on disk)") from exc
    return meta


def _read_header(path: Path, fh: Any, size: int) -> tuple[dict[str, Any], int]:
    """Parse and validate the safetensors header; returns (header, data start offset)."""
    if size < 8:
        raise ModelFileError(path, f"not a PatchCore model file (only {size} bytes)")
    (n,) = struct.unpack("<Q", fh.read(8))
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise ModelFileError(
            path,
            "not a PatchCore model file (no valid safetensors header; "
            f"header length field says {n:,} bytes, file has {size:,})",
        )
    raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: a hostile header of deeply nested brackets exhausts the
        # parser's stack; it is as invalid as any other garbage.
        raise ModelFileError(path, "not a PatchCore model file (header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a PatchCore model file (header is not a JSON object)")
    return header, 8 + n


def _validate_entries(path: Path, header: dict[str, Any], data_len: int) -> dict[str, tuple[str, list[int]]]:
    """Check every tensor entry's dtype, shape and byte range against the file size."""
    entries: dict[str, tuple[str, list[int]]] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelFileError(path, f"corrupt header entry for tensor {name!r}")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPES:
            raise ModelFileError(path, f"tensor {name!r} has unsupported dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
            raise ModelFileError(path, f"tensor {name!r} has an invalid shape")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise ModelFileError(path, f"tensor {name!r} has invalid data offsets")
        start, end = offs
        nbytes = _DTYPES[dtype][1]
        for s in shape:
            nbytes *= s
        if not 0 <= start <= end <= data_len or end - start != nbytes:
            raise ModelFileError(
                path,
                f"file is truncated or corrupt (tensor {name!r} claims bytes {start}-{end}, "
                f"{data_len:,} data bytes present)",
            )
        spans.append((start, end))
        entries[name] = (dtype, shape)
    spans.sort()
    for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False):
        if s1 < e0:
            raise ModelFileError(path, "corrupt file (tensor data overlaps)")
    return entries


#: Bounds on what a model's configuration may ask for. Beyond them a (tampered) file
#: would make prediction allocate without limit (a 10^6 px crop, a 10^9-d embedding).
MAX_CROP = 4096
MAX_RESIZE = 8192
MAX_EMBED_DIM = 8192
MAX_PATCH_SIZE = 15
MAX_LAYERS = 8
MAX_MEAN = 10.0
MIN_STD = 1e-3
MAX_STD = 1e3


def _is_int(v: Any) -> bool:
    """A JSON integer (bool is an int subclass in Python but not a number here)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _validate_metadata(path: Path, meta: dict[str, Any], bank_shape: list[int]) -> None:
    """Check the metadata's types and ranges before anything is built from it.

    The blocks readers index into must be objects, thresholds numbers. The ``config``
    block is only checked when present (``PatchCoreModel.load`` reports a missing one);
    every value that later becomes an allocation size or a loop bound is bounded here,
    so NaN, infinity, negative or absurd values are one line, not a crash or an
    out-of-memory at prediction time.
    """

    def bad(what: str) -> ModelFileError:
        return ModelFileError(path, f"corrupt metadata: {what}")

    # Blocks that readers (summary, model card, ``patchcore info``) index into.
    for key in ("threshold", "calibration", "training", "coreset", "software", "normalization"):
        if key in meta and not isinstance(meta[key], dict):
            raise bad(f"{key} is not an object")
    _validate_training_files(meta, bad)
    threshold = meta.get("threshold", {})
    for key in ("image", "pixel", "review_from"):
        # NaN (no threshold) is a number here; null is not: readers call float() on it.
        if key in threshold and not (_is_int(threshold[key]) or isinstance(threshold[key], float)):
            raise bad(f"threshold.{key} is not a number")
    warmup = meta.get("bn_warmup")
    if warmup is not None and warmup not in BN_WARMUP_VALUES:
        raise bad(f"bn_warmup must be one of {', '.join(BN_WARMUP_VALUES)}")
    cfg = meta.get("config")
    if cfg is None:
        return
    if warmup is None and meta.get("format_version", 1) >= 2:
        # A format-2 model must say whether its statistics were warmed; guessing
        # would score with the wrong ones.
        raise bad("bn_warmup missing")
    if not isinstance(cfg, dict):
        raise bad("config is not an object")
    if not isinstance(cfg.get("backbone"), str):
        raise bad("config.backbone is not a name")
    layers = cfg.get("layers")
    if (not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS
            or not all(isinstance(x, str) for x in layers)):
        raise bad("config.layers is not a list of layer names")
    emb = cfg.get("embedding")
    if not isinstance(emb, dict):
        raise bad("config.embedding is not an object")
    if emb.get("mode", "reference") not in ("reference", "native"):
        raise bad(f"unknown embedding mode {str(emb.get('mode'))[:40]!r}")
    ps = emb.get("patch_size", 3)
    if not _is_int(ps) or not 1 <= ps <= MAX_PATCH_SIZE or ps % 2 == 0:
        raise bad(f"patch_size must be an odd integer from 1 to {MAX_PATCH_SIZE}")
    for key in ("pretrain_dim", "target_dim"):
        v = emb.get(key, 1024)
        if not _is_int(v) or not 1 <= v <= MAX_EMBED_DIM:
            raise bad(f"embedding {key} must be an integer from 1 to {MAX_EMBED_DIM}")
    crop, resize, k = cfg.get("crop"), cfg.get("resize"), cfg.get("k")
    if not _is_int(crop) or not 32 <= crop <= MAX_CROP:
        raise bad(f"crop must be an integer from 32 to {MAX_CROP}")
    if not _is_int(resize) or not (resize == 0 or crop <= resize <= MAX_RESIZE):
        raise bad(f"resize must be 0 or an integer from crop ({crop}) to {MAX_RESIZE}")
    rows = bank_shape[0] if len(bank_shape) == 2 else 0
    if not _is_int(k) or not 1 <= k <= max(rows, 1):
        raise bad(f"k must be an integer from 1 to the bank's {rows} rows")
    for key in ("mean", "std"):
        v = cfg.get(key)
        if not isinstance(v, list) or len(v) != 3 or not all(_is_finite_number(x) for x in v):
            raise bad(f"{key} must be three finite numbers")
    # Images are normalised from [0, 1]: a mean far outside or a tiny std would push
    # inputs to magnitudes where features, and so scores, overflow to inf/NaN.
    if not all(-MAX_MEAN <= x <= MAX_MEAN for x in cfg["mean"]):
        raise bad(f"mean values must lie in [-{MAX_MEAN:g}, {MAX_MEAN:g}]")
    if not all(MIN_STD <= x <= MAX_STD for x in cfg["std"]):
        raise bad(f"std values must lie in [{MIN_STD:g}, {MAX_STD:g}]")


def _validate_training_files(meta: dict[str, Any], bad: Any) -> None:
    """``training.files``, when present: a list of {"path": str, "sha256": 64 hex digits}."""
    files = meta.get("training", {}).get("files")
    if files is None:
        return
    if not isinstance(files, list):
        raise bad("training.files is not a list")
    for i, f in enumerate(files):
        if (not isinstance(f, dict) or not isinstance(f.get("path"), str)
                or not isinstance(f.get("sha256"), str) or len(f["sha256"]) != 64):
            raise bad(f"training.files[{i}] is not a {{path, sha256}} record")


def check_bank_source(path: Path, source: torch.Tensor, meta: dict[str, Any], bank_rows: int) -> None:
    """The provenance tensor must name a real image and a real grid cell for every bank row.

    A wrong index here would not change a score, but evidence would show the wrong
    training picture as "the nearest normal patch": refused like any corrupt file.
    """
    if source.dtype != torch.int32 or source.ndim != 2 or source.shape[1] != 2 or source.shape[0] != bank_rows:
        raise ModelFileError(path, f"bank_source must be int32 ({bank_rows}, 2), got {source.dtype} "
                                   f"{tuple(source.shape)}")
    if source.numel() == 0:
        return
    if int(source.min()) < 0:
        raise ModelFileError(path, "bank_source has a negative index")
    files = meta.get("training", {}).get("files")
    if isinstance(files, list) and int(source[:, 0].max()) >= len(files):
        raise ModelFileError(path, f"bank_source names image {int(source[:, 0].max())} of {len(files)} training files")
    grid = meta.get("grid")
    if (isinstance(grid, list) and len(grid) == 2 and all(_is_int(g) for g in grid)
            and int(source[:, 1].max()) >= grid[0] * grid[1]):
        raise ModelFileError(path, f"bank_source names patch {int(source[:, 1].max())} of a {grid[0]} x {grid[1]} grid")


def read_model_file(path: str | os.PathLike[str], *, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load tensors and metadata, validating everything; raises ModelFileError.

    Args:
        verify: recompute the tensor checksum (catches bit flips in tensor data).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise ModelFileError(p, "is a folder, not a model file")
        with open(p, "rb") as fh:
            header, data_start = _read_header(p, fh, size)
            meta_block = header.get("__metadata__")
            if not isinstance(meta_block, dict) or META_KEY not in meta_block:
                raise ModelFileError(p, "not a PatchCore Inspector model file (no patchcore_gui metadata)")
            try:
                meta = json.loads(meta_block[META_KEY])
            except (TypeError, json.JSONDecodeError, RecursionError):
                raise ModelFileError(p, "corrupt metadata (not valid JSON)") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise ModelFileError(p, "not a PatchCore Inspector model file (wrong format name)")
            version = meta.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise ModelFileError(p, "corrupt metadata (format_version missing)")
            if version > FORMAT_VERSION:
                raise ModelFileError(
                    p, f"made by a newer PatchCore Inspector (format {version}; this version reads up to {FORMAT_VERSION})"
                )
            if version < 1:
                raise ModelFileError(p, f"unsupported format version {version}")
            entries = _validate_entries(p, header, size - data_start)
            if BANK_KEY not in entries:
                raise ModelFileError(p, "no memory bank in the file")
            _validate_metadata(p, meta, entries[BANK_KEY][1])
            if version < 2 and "bn_warmup" not in meta:
                # Format 1 never warmed BatchNorms: say so explicitly, so the file keeps
                # scoring as it was trained and a re-save does not pass for a warmed one.
                meta["bn_warmup"] = "none"
                meta["bn_warmup_note"] = LEGACY_BN_NOTE
            fh.seek(0)
            data = fh.read()
    except FileNotFoundError:
        raise ModelFileError(p, "file not found") from None
    except PermissionError:
        raise ModelFileError(p, "permission denied") from None
    except IsADirectoryError:
        raise ModelFileError(p, "is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(p, f"cannot read file: {exc.strerror or exc}") from None
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # any parser failure is one line for the user
        raise ModelFileError(p, f"corrupt tensor data ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if verify:
        stored = meta.get("tensor_sha256")
        if stored != tensor_checksum(tensors):
            raise ModelFileError(p, "checksum mismatch: the file was modified or damaged")
    bank = tensors.get(BANK_KEY)
    if bank is not None and bank.is_floating_point() and not bool(torch.isfinite(bank).all()):
        # The checksum is no signature: a re-saved file can carry NaN/inf rows, which
        # would make every distance, and so every score, NaN or inf without an error.
        raise ModelFileError(p, "memory bank contains NaN or infinite values")
    return tensors, meta
