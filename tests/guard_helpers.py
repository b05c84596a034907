"""Small, fast real models for the mutation-guard tests (imported as a plain module).

A resnet18 with fixed-seed random weights at crop 32 trains in a few seconds on a
2-core CPU: its layer2 grid is 4 x 4, so every image gives exactly 16 bank rows of
1024 dims (the reference layout). Row counts in the tests are therefore literals.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tests_helpers import textured

#: Patch rows per 32 x 32 crop with resnet18 layers 2 and 3 (layer2 stride 8 -> 4 x 4).
ROWS_PER_IMAGE = 16
CROP = 32
RESIZE = 36


@functools.lru_cache(maxsize=1)
def _r18_state() -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


def r18_weights() -> dict[str, torch.Tensor]:
    """A fresh copy of fixed-seed random resnet18 weights (no download is possible here)."""
    return {k: v.clone() for k, v in _r18_state().items()}


def write_images(folder: Path, count: int, seed: int, prefix: str = "img") -> list[Path]:
    """``count`` stripy 40 x 40 PNGs named ``<prefix>_NN.png``; returns their sorted paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        p = folder / f"{prefix}_{i:02d}.png"
        Image.fromarray(textured(rng, 40, 40)).save(p)
        paths.append(p)
    return paths


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared Euclidean distances between rows of ``a`` and ``b``, in float64, brute force."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ((a64[:, None, :] - b64[None, :, :]) ** 2).sum(axis=2)
