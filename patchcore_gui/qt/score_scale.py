"""The threshold panel's score axis: linear, or log10 when the scores span more than a decade.

``ScoreScale`` maps scores to the histogram's view coordinates and to slider steps;
``log_ticks`` labels a log axis; ``share_histogram`` is a histogram in percent of its values.
"""

from __future__ import annotations

import math

import numpy as np

SLIDER_STEPS = 1000


class ScoreScale:
    """Maps scores to view coordinates: identity, or log10 when the range is wide."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0, log: bool = False) -> None:
        self.log = log and lo > 0
        self.lo, self.hi = lo, hi

    @classmethod
    def for_values(cls, values: np.ndarray) -> ScoreScale:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls(0.0, 1.0)
        lo, hi = float(v.min()), float(v.max())
        if hi <= lo:
            lo, hi = lo - abs(lo) * 0.1 - 0.5, hi + abs(hi) * 0.1 + 0.5
        if lo > 0 and hi / lo > 10:
            return cls(lo / 1.15, hi * 1.15, log=True)
        pad = 0.06 * (hi - lo)
        return cls(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)

    def to_view(self, v: np.ndarray | float) -> np.ndarray | float:
        return np.log10(np.maximum(v, 1e-12)) if self.log else v

    def from_view(self, x: float) -> float:
        return float(10.0 ** x) if self.log else float(x)

    def to_slider(self, v: float) -> int:
        a, b = self.to_view(self.lo), self.to_view(self.hi)
        f = (self.to_view(v) - a) / (b - a) if b > a else 0.0
        return int(round(min(1.0, max(0.0, float(f))) * SLIDER_STEPS))

    def from_slider(self, k: int) -> float:
        a, b = self.to_view(self.lo), self.to_view(self.hi)
        return self.from_view(float(a + (b - a) * k / SLIDER_STEPS))


def log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Readable ticks for a log axis from ``lo`` to ``hi``: 1-2-5 steps, or decades if crowded."""
    if not (lo > 0 and hi > lo):
        return []
    out: list[tuple[float, str]] = []
    for mults in ((1, 2, 5), (1, 3), (1,)):
        out = []
        for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in mults:
                v = m * 10.0**k
                if lo <= v <= hi:
                    out.append((math.log10(v), f"{v:g}"))
        if len(out) <= 7:
            break
    return out


def share_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    return 100.0 * counts / max(1, len(values))
