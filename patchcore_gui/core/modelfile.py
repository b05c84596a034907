"""The model file: one safetensors file holding the bank, the backbone weights and JSON metadata.

Nothing here unpickles. The header is validated by hand before any tensor is read, so a
truncated, tampered, foreign or hostile file is rejected with one line that names the
file and the problem, without large allocations.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

FORMAT_NAME = "patchcore_gui.model"
FORMAT_VERSION = 1
#: Key of our JSON document inside safetensors' ``__metadata__``.
META_KEY = "patchcore_gui"
BANK_KEY = "memory_bank"
BACKBONE_PREFIX = "backbone."
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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename over ``path``.

    A failure (disk full, no permission) leaves no partial file and the old file intact.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_model_file(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Write tensors + metadata atomically; returns the metadata as stored (with checksum)."""
    from safetensors.torch import save

    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = dict(meta)
    meta["format"] = FORMAT_NAME
    meta["format_version"] = FORMAT_VERSION
    meta["tensor_sha256"] = tensor_checksum(clean)
    data = save(clean, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    atomic_write_bytes(path, data)
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
    except (UnicodeDecodeError, json.JSONDecodeError):
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
            except (TypeError, json.JSONDecodeError):
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
    except Exception as exc:  # noqa: BLE001 - any parser failure is one line for the user
        raise ModelFileError(p, f"corrupt tensor data ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if verify:
        stored = meta.get("tensor_sha256")
        if stored != tensor_checksum(tensors):
            raise ModelFileError(p, "checksum mismatch: the file was modified or damaged")
    return tensors, meta
