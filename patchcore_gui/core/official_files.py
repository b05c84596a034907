"""Reading the official patchcore-inspection files safely: the params pickle and the faiss index.

Unpickling can run arbitrary code, so the pickle is read by ``RestrictedUnpickler``:
the opcode stream is checked first against an allow-list of opcodes that only build
plain values (no import, call, object construction or persistent id), then unpickled
by a subclass whose ``find_class`` always refuses. The faiss file is parsed by hand
with ``struct``/``numpy`` (faiss never reads it), every size checked against the file
size before anything is allocated. ``core/official_import.py`` builds the model.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import pickletools
import struct
from pathlib import Path
from typing import Any

import numpy as np

PARAMS_FILE = "patchcore_params.pkl"
INDEX_FILE = "nnscorer_search_index.faiss"

#: The settings pickle holds 8 small values; anything bigger is not one.
MAX_PARAMS_BYTES = 1 << 20
#: Nesting allowed in the settings (a dict of lists/tuples is depth 2).
MAX_PARAMS_DEPTH = 8
#: Largest feature dimension accepted from a faiss file (the reference uses 1024).
MAX_INDEX_DIM = 65536

#: The reference's backbone names (``patchcore.backbones``) that this project supports.
BACKBONE_NAMES: dict[str, str] = {
    "wideresnet50": "wide_resnet50_2",
    "wideresnet101": "wide_resnet101_2",
    "resnet18": "resnet18",
    "resnet50": "resnet50",
}

# faiss's on-disk layout of an IndexFlat (faiss/impl/index_write.cpp: write_index_header
# then the codes vector): fourcc, d (int32), ntotal (int64), two int64 placeholders
# (1 << 20), is_trained (uint8), metric_type (int32), then the codes as a size_t count
# of float32 values followed by the values. Checked by a faiss.write_index round trip
# in the tests.
_FAISS_HEADER = struct.Struct("<4siqqqBi")
_FAISS_COUNT = struct.Struct("<Q")
_FAISS_METRIC_L2 = 1
_FAISS_FOURCC_NAMES = {
    b"IxF2": "IndexFlatL2",
    b"IxFI": "IndexFlatIP",
    b"IxFl": "IndexFlat",
    b"IHNf": "IndexHNSWFlat",
    b"IwFl": "IndexIVFFlat",
    b"IwPQ": "IndexIVFPQ",
    b"IxPQ": "IndexPQ",
    b"IxSQ": "IndexScalarQuantizer",
    b"IxMp": "IndexIDMap",
}


class OfficialImportError(ValueError):
    """The official model cannot be imported; ``str()`` is one line with the reason."""


class UnsafePickleError(OfficialImportError):
    """The pickle asks for more than plain values (an import, a call, an object)."""


# --------------------------------------------------------------------------- pickle

#: Opcodes that only push or combine plain values: dict, list, tuple, str, int, float,
#: bool, None, plus the memo and framing bookkeeping. Everything else (GLOBAL,
#: STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ*, EXT*, PERSID, sets, bytes and
#: buffers) is refused before the unpickler sees a single byte.
_SAFE_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
    "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8",
    "EMPTY_LIST", "APPEND", "APPENDS", "LIST",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
})
_STRING_OPCODES = frozenset({
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that cannot import anything: ``find_class`` always refuses.

    Used only after ``check_pickle_opcodes`` has passed, as a second, independent
    barrier: even an opcode the allow-list missed could not reach a global.
    """

    def find_class(self, module: str, name: str) -> Any:  # pickle API
        raise UnsafePickleError(f"refused: the pickle asks to import {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses persistent ids")


def check_pickle_opcodes(data: bytes) -> None:
    """Raise UnsafePickleError unless ``data`` is one pickle of plain values only.

    ``pickletools.genops`` only decodes opcodes (it never builds objects or imports),
    and it reads counted strings through ``BytesIO.read``, which never allocates more
    than the data holds however large the declared length.
    """
    recent: list[tuple[str, Any]] = []
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name not in _SAFE_OPCODES:
                raise UnsafePickleError(f"refused: {_describe_unsafe(name, arg, recent)}")
            if name != "MEMOIZE":
                recent = [*recent[-1:], (name, arg)]
    except UnsafePickleError:
        raise
    except Exception as exc:  # genops raises ValueError and others on garbage
        raise OfficialImportError(f"not a valid pickle ({_first_line(exc)})") from None


def _describe_unsafe(name: str, arg: Any, recent: list[tuple[str, Any]]) -> str:
    """Say what a refused opcode would have done, for the one-line error."""
    if name == "GLOBAL" and isinstance(arg, str):
        return f"the pickle asks to import {arg.replace(' ', '.')} (opcode GLOBAL)"
    if name == "STACK_GLOBAL" and len(recent) == 2 and all(op in _STRING_OPCODES for op, _ in recent):
        return f"the pickle asks to import {recent[0][1]}.{recent[1][1]} (opcode STACK_GLOBAL)"
    if name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4"):
        return f"the pickle asks to import code (opcode {name})"
    if name in ("REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX"):
        return f"the pickle asks to call code or build an object (opcode {name})"
    return f"the pickle holds something other than plain values (opcode {name})"


def _check_plain(value: Any) -> None:
    """Only dict (str keys), list, tuple, str, int, float, bool and None, not too deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_PARAMS_DEPTH:
            raise UnsafePickleError("refused: the settings are nested too deeply")
        if v is None or isinstance(v, (bool, int, float, str)):
            continue
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise UnsafePickleError(f"refused: a settings key is a {type(k).__name__}, not a string")
                stack.append((item, depth + 1))
        elif isinstance(v, (list, tuple)):
            stack.extend((item, depth + 1) for item in v)
        else:  # unreachable after the opcode check; kept as a last barrier
            raise UnsafePickleError(f"refused: the settings hold a {type(v).__name__}")


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the reference's ``patchcore_params.pkl`` without running any code.

    Raises:
        UnsafePickleError: the pickle holds anything but plain values.
        OfficialImportError: missing, too large, or not a valid pickle of a dict.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise OfficialImportError(f"{p.name} is {size:,} bytes; the settings pickle is a few hundred bytes")
        data = p.read_bytes()
    except FileNotFoundError:
        raise OfficialImportError(f"{p.name} not found in {p.parent}") from None
    except OSError as exc:
        raise OfficialImportError(f"cannot read {p.name}: {exc.strerror or _first_line(exc)}") from None
    try:
        check_pickle_opcodes(data)
        value = RestrictedUnpickler(io.BytesIO(data)).load()
        _check_plain(value)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{p.name}: {exc}; only plain settings (dicts, lists, tuples, strings, "
                                "numbers, booleans, None) are accepted") from None
    except OfficialImportError as exc:
        raise OfficialImportError(f"{p.name}: {exc}") from None
    except Exception as exc:  # any decoding failure is one line for the user
        raise OfficialImportError(f"{p.name}: not a valid pickle ({_first_line(exc)})") from None
    if not isinstance(value, dict):
        raise OfficialImportError(f"{p.name}: holds a {type(value).__name__}, not the settings dict")
    return value


# --------------------------------------------------------------------------- faiss


def read_faiss_flat_l2(path: str | os.PathLike[str]) -> tuple[np.ndarray, str]:
    """The vectors of a faiss ``IndexFlatL2`` file as float32 (ntotal, d), and its SHA-256.

    Parsed by hand: every count is checked against the file size before the data is
    read, so a truncated or hostile file costs no large allocation.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(_FAISS_HEADER.size)
            if len(head) < 4:
                raise OfficialImportError(f"{p.name}: not a faiss index file ({size} bytes)")
            fourcc = head[:4]
            if fourcc != b"IxF2":
                kind = _FAISS_FOURCC_NAMES.get(fourcc)
                what = f"a faiss {kind} ({fourcc.decode('latin-1')!r})" if kind else "not a faiss IndexFlatL2 file"
                raise OfficialImportError(
                    f"{p.name}: {what}; only the exact IndexFlatL2 that patchcore-inspection saves can be imported"
                )
            if len(head) < _FAISS_HEADER.size or size < _FAISS_HEADER.size + _FAISS_COUNT.size:
                raise OfficialImportError(f"{p.name}: truncated faiss file ({size} bytes)")
            _, d, ntotal, _, _, _is_trained, metric = _FAISS_HEADER.unpack(head)
            if metric != _FAISS_METRIC_L2:
                raise OfficialImportError(f"{p.name}: index metric is {metric}, not L2")
            if not 1 <= d <= MAX_INDEX_DIM:
                raise OfficialImportError(f"{p.name}: corrupt faiss file (dimension {d})")
            if ntotal < 1:
                raise OfficialImportError(f"{p.name}: the index holds no vectors ({ntotal})")
            (count,) = _FAISS_COUNT.unpack(fh.read(_FAISS_COUNT.size))
            data_start = _FAISS_HEADER.size + _FAISS_COUNT.size
            expected = ntotal * d
            if count != expected:
                raise OfficialImportError(
                    f"{p.name}: corrupt faiss file ({ntotal:,} vectors of {d} dims but {count:,} values stored)"
                )
            if size - data_start != expected * 4:
                problem = "truncated" if size - data_start < expected * 4 else "has trailing bytes"
                raise OfficialImportError(
                    f"{p.name}: faiss file {problem} ({size:,} bytes; {ntotal:,} x {d} vectors need "
                    f"{data_start + expected * 4:,})"
                )
            raw = fh.read(expected * 4)
            if len(raw) != expected * 4:  # the file shrank while we read it
                raise OfficialImportError(f"{p.name}: faiss file truncated while reading")
            digest = hashlib.sha256(head + _FAISS_COUNT.pack(count) + raw).hexdigest()
    except FileNotFoundError:
        raise OfficialImportError(f"{p.name} not found in {p.parent}") from None
    except IsADirectoryError:
        raise OfficialImportError(f"{p.name} is a folder, not a faiss file") from None
    except OSError as exc:
        raise OfficialImportError(f"cannot read {p.name}: {exc.strerror or _first_line(exc)}") from None
    vectors = np.frombuffer(raw, dtype="<f4").reshape(ntotal, d).astype(np.float32)
    if not np.isfinite(vectors).all():
        raise OfficialImportError(f"{p.name}: the memory bank contains NaN or infinite values")
    return vectors, digest


# --------------------------------------------------------------------------- helpers


def json_plain(value: Any) -> Any:
    """Tuples as lists and non-finite floats as strings, so the metadata is plain JSON."""
    if isinstance(value, dict):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def short_repr(value: Any, limit: int = 60) -> str:
    """A value for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__
