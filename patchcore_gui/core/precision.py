"""Arithmetic modes of the backbone and the nearest-neighbour search (``--precision``).

Three resolved modes, named for what runs:

- ``exact``: float32 NCHW backbone and an exact search (``core.search``: faiss
  ``IndexFlatL2``'s nearest rows, float32 distances): the official code's scores, what
  parity is checked on.
- ``fast``: a channels-last backbone with its batch norms folded (float16 on CUDA,
  float32 on the CPU) and a candidate search in a principal subspace whose nearest rows
  are re-scored exactly in float32 (image scores within 1 % of exact).
- ``half``: the fast path, but the backbone under bfloat16 autocast on CPUs that run
  bfloat16 natively (AVX512_BF16 or AMX), float16 on CUDA (there the same arithmetic as
  ``fast``). Faster on such CPUs, and scores move more (docs/performance.md); never a
  default, and refused (:class:`PrecisionUnsupportedError`) on CPUs without native
  bfloat16, where it would be emulated and slower than float32.

``auto`` resolves to exact on the CPU and fast on CUDA. ``fp32`` and ``bf16`` are the
old names of exact and fast: still accepted (command line, saved settings, old run and
model files), never written.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

EXACT, FAST, HALF = "exact", "fast", "half"
#: The resolved arithmetic modes, as recorded in run files, model files and reports.
PRECISIONS = (EXACT, FAST, HALF)
#: What callers may ask for (the CLI's and the window's choices).
PRECISION_CHOICES = ("auto", *PRECISIONS)
#: Old names, accepted on input only: "bf16" ran float32 on CPUs, so it was never a name for what ran.
PRECISION_ALIASES = {"fp32": EXACT, "bf16": FAST}
#: Every name accepted on input.
ACCEPTED_PRECISIONS = (*PRECISION_CHOICES, *PRECISION_ALIASES)

#: /proc/cpuinfo flags of native bfloat16 arithmetic: x86 (AVX512_BF16, AMX) and arm64.
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


class PrecisionUnsupportedError(ValueError):
    """The requested precision cannot run natively on this device (one line, says why)."""


def canonical_precision(precision: str) -> str:
    """``precision`` with old names mapped ("fp32" -> "exact", "bf16" -> "fast"); "auto" stays.

    Raises ValueError for an unknown name.
    """
    name = str(precision)
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {precision!r}; use {', '.join(PRECISION_CHOICES)} "
                         f"(fp32 and bf16 are the old names of exact and fast)")
    return name


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bfloat16 arithmetic natively (``avx512_bf16`` / ``amx_bf16`` flags).

    Read from /proc/cpuinfo's flag lines. torch's ``_is_mkldnn_bf16_supported()`` is no
    use here: on torch 2.14.1 it is also true on plain AVX-512 CPUs, where oneDNN emulates
    bfloat16 and is slower than float32. Where /proc/cpuinfo cannot be read the answer is
    False: half is then refused rather than risked.
    """
    try:
        text = CPUINFO.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and _NATIVE_BF16_FLAGS & set(value.split()):
            return True
    return False


def half_unsupported_reason(device: torch.device) -> str | None:
    """Why ``half`` cannot run on ``device`` (one line), or None when it can."""
    if device.type == "cuda":
        return None  # float16 on CUDA
    if cpu_has_native_bf16():
        return None
    return ("half precision needs a CPU with native bfloat16 (AVX512_BF16 or AMX flags); "
            "this CPU would emulate it, slower than float32: use fast or exact")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The resolved mode ("exact", "fast" or "half") ``precision`` means on ``device``.

    "auto" is exact on the CPU and fast on CUDA; old names are mapped. Raises ValueError
    for an unknown name and :class:`PrecisionUnsupportedError` for half where the device
    lacks native support.
    """
    name = canonical_precision(precision)
    if name == "auto":
        return FAST if device.type == "cuda" else EXACT
    if name == HALF:
        reason = half_unsupported_reason(device)
        if reason:
            raise PrecisionUnsupportedError(reason)
    return name


def recorded_precision(value: object) -> str:
    """A precision read from a run or model file as its resolved name ("" when absent or unknown).

    Old files say "fp32" / "bf16"; they mean exact / fast.
    """
    name = PRECISION_ALIASES.get(str(value or ""), str(value or ""))
    return name if name in PRECISIONS else ""


def half_backbone_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision the fast path's backbone runs in on ``device``; None: float32.

    float16 on CUDA (tensor cores; as fast as bfloat16 there). Not bfloat16: with 8
    significant bits it moved image scores by up to 3.3 % (median 0.2-1.2 %) and image
    AUROC at the third decimal on real EfficientNet-Lite0 features, against at most
    0.46 % for float16's 11 bits (``benchmarks/bench_fast_accuracy.py --backbone-dtype``,
    docs/performance.md); the fast path promises scores within 1 % of the exact one.
    On the CPU the fast path's backbone stays float32 (bfloat16 is the ``half`` mode).
    """
    return torch.float16 if device.type == "cuda" else None


def backbone_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the backbone for resolved ``precision`` on ``device``; None: float32."""
    if precision == HALF:
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if precision == FAST:
        return half_backbone_dtype(device)
    return None


def fast_backbone(extractor: torch.nn.Module, precision: str) -> torch.nn.Module | None:
    """The backbone the fast and half paths run: batch norms folded where possible, channels-last.

    None on the exact path, which runs ``extractor`` itself (NCHW, unfolded: parity).
    """
    if precision == EXACT:
        return None
    from .bn_fold import fold_batchnorm

    return (fold_batchnorm(extractor) or extractor).to(memory_format=torch.channels_last)


#: The measured cost of half, in one line (README, the window's note beside the choice);
#: figures from docs/performance.md, "Half precision".
HALF_COST = "half: ~2x faster backbone; scores move up to 4.6 %, image AUROC -0.02 at worst on our sets"
