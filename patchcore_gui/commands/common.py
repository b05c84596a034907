"""What every ``patchcore`` sub-command shares: the user-facing error, exit codes,
argument types, the device options, progress bars, model loading and text output.

Heavy modules (torch, the engine) are imported inside the functions that need them,
so ``patchcore --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def progress_bar(desc: str, total: int, quiet: bool) -> Any:
    """A tqdm bar on stderr (disabled with ``quiet``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True, leave=False)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {v}")
    return v


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    v = float(text)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def device_options(sp: argparse.ArgumentParser) -> None:
    """--device, --batch-size, --num-workers, --quiet and --precision of train / predict / evaluate."""
    from ..core.precision import ACCEPTED_PRECISIONS

    sp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    sp.add_argument("--batch-size", type=positive_int, default=None,
                    help="images per batch (default: 8 on the CPU; on CUDA chosen from free GPU memory)")
    sp.add_argument("--num-workers", type=non_negative_int, default=None,
                    help="DataLoader worker processes decoding images (default: 0 on the CPU, "
                         "up to 8 on CUDA)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
    sp.add_argument("--precision", choices=ACCEPTED_PRECISIONS, default="auto", metavar="{auto,exact,fast,half}",
                    help="exact: the official code's scores; fast: reduced search with exact re-scoring "
                         "(float16 backbone on CUDA, float32 on the CPU; scores within 1 %%); half: fast "
                         "with a bfloat16 backbone on CPUs with native bfloat16 (float16 on CUDA), scores "
                         "move more (see README); auto (default): exact on the CPU, fast on CUDA. "
                         "fp32 and bf16 are accepted as the old names of exact and fast")


def load_model(path: str, device: str, precision: str = "auto") -> Any:
    """A PatchCoreModel from a model file."""
    from ..core.model import PatchCoreModel

    return PatchCoreModel.load(path, device=device, precision=precision)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write text (non-UTF-8 file names kept as their bytes) atomically."""
    from ..core.atomic import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def write_stdout(text: str) -> None:
    """Print CSV text; file names that are not valid UTF-8 go out as their original bytes."""
    buf = getattr(sys.stdout, "buffer", None)
    if buf is None:
        sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        return
    sys.stdout.flush()
    buf.write(text.encode("utf-8", "surrogateescape"))
    buf.flush()


def fmt(v: float) -> str:
    """A number for a one-line summary: 6 significant digits, "" when not finite."""
    return "" if not math.isfinite(v) else f"{v:.6g}"


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj
