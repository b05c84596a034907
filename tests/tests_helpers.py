"""Image generators shared by tests (imported as a plain module)."""

from __future__ import annotations

import numpy as np


def textured(rng: np.random.Generator, h: int = 96, w: int = 104) -> np.ndarray:
    """A stripy, noisy RGB texture (a stand-in for a good part surface)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 3.0 + rng.uniform(0, 6.28)) + 10 * np.cos(yy / 5.0)
    img = base[..., None] + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def with_defect(img: np.ndarray, y: int, x: int, size: int = 14) -> np.ndarray:
    """A copy of ``img`` with a saturated red square planted at (y, x)."""
    out = img.copy()
    out[y : y + size, x : x + size] = (250, 20, 20)
    return out
