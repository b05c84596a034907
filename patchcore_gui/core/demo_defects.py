"""Synthetic defects for the demo data set: scratches, stains and holes planted on a tile.

Each planter returns the changed tile and the exact mask of the pixels it changed, so
the demo's ground truth is true by construction. ``core/demo_data.py`` deals them out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Defect types planted on test tiles, in the order defect counts are dealt out.
DEFECT_TYPES: tuple[str, ...] = ("scratch", "stain", "hole")


def _grid(tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a ``tile`` x ``tile`` image, as float arrays."""
    yy, xx = np.mgrid[0:tile, 0:tile].astype(np.float64)
    return yy, xx


def _blob_alpha(
    tile: int, rng: np.random.Generator, area_range: tuple[float, float], edge_px: float
) -> np.ndarray:
    """Blending weight in [0, 1] of an irregular ellipse-like blob; 0 outside it.

    The outline is an ellipse whose radius is modulated by a few low harmonics, scaled
    so the enclosed area is a random fraction ``area_range`` of the tile. Inside the
    outline the weight ramps from 0 to 1 over ``edge_px`` pixels, giving a soft edge.
    """
    # Outline r(theta) for a unit "radius": low harmonics make it irregular, not jagged.
    n_harm = 4
    amps = rng.uniform(0.0, 0.12, n_harm) / np.arange(1, n_harm + 1) ** 0.5
    phases = rng.uniform(0.0, 2 * np.pi, n_harm)
    ks = np.arange(2, 2 + n_harm)

    def shape(theta: np.ndarray) -> np.ndarray:
        return 1.0 + np.sum(amps[:, None] * np.cos(ks[:, None] * theta + phases[:, None]), axis=0)

    aspect = rng.uniform(1.0, 1.8)
    ax, ay = np.sqrt(aspect), 1.0 / np.sqrt(aspect)  # semi-axes with ax * ay == 1
    rot = rng.uniform(0.0, np.pi)

    # Area of the polar curve r = s * shape(theta) stretched by (ax, ay) is
    # s^2 * ax * ay * pi * mean(shape^2); solve for s so the blob hits the target area.
    probe = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    target = rng.uniform(*area_range) * tile * tile
    scale = np.sqrt(target / (np.pi * np.mean(shape(probe) ** 2)))
    extent = scale * float(np.max(shape(probe))) * max(ax, ay)

    # Keep the whole blob (plus a small margin) inside the tile where it fits.
    lo, hi = extent + 2.0, tile - 1.0 - extent - 2.0
    cy = rng.uniform(lo, hi) if hi > lo else (tile - 1) / 2.0
    cx = rng.uniform(lo, hi) if hi > lo else (tile - 1) / 2.0

    yy, xx = _grid(tile)
    dy, dx = yy - cy, xx - cx
    # Rotate into the blob's frame, then undo the anisotropy.
    u = (dx * np.cos(rot) + dy * np.sin(rot)) / ax
    v = (-dx * np.sin(rot) + dy * np.cos(rot)) / ay
    rho = np.hypot(u, v)
    boundary = scale * shape(np.arctan2(v, u).ravel()).reshape(rho.shape)
    # Approximate distance inside the outline, measured in the blob's normalised frame;
    # since ax * ay == 1 it is within a factor sqrt(aspect) of true pixels all round.
    depth = boundary - rho
    return np.clip(depth / edge_px, 0.0, 1.0)


def _scratch_alpha(tile: int, rng: np.random.Generator) -> np.ndarray:
    """Blending weight in [0, 1] of a thin, gently curved line; 0 away from it."""
    length = rng.uniform(0.35, 0.7) * tile
    angle = rng.uniform(0.0, np.pi)
    half_width = rng.uniform(0.8, 1.6)  # 1.6-3.2 px wide: thin but visible at 128 px
    bend = rng.uniform(-0.12, 0.12) * length  # sideways offset of the curve's middle

    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    # Choose the centre so both ends (and the bend) stay 4 px inside the tile.
    span = np.abs(direction) * length / 2 + np.abs(normal) * abs(bend)
    margin = 4.0 + half_width
    lo = margin + span
    hi = tile - 1.0 - margin - span
    centre = np.where(hi > lo, rng.uniform(0.0, 1.0, 2) * (hi - lo) + lo, (tile - 1) / 2.0)

    # Sample the quadratic curve densely (every ~0.5 px) and take the distance from each
    # pixel to the nearest sample: simple, vectorised, and accurate to a fraction of a px.
    t = np.linspace(-0.5, 0.5, max(8, int(length * 2)))
    pts = (
        centre[None, :]
        + t[:, None] * length * direction[None, :]
        + (1.0 - 4.0 * t[:, None] ** 2) * bend * normal[None, :]
    )  # (n, 2) as (x, y)
    yy, xx = _grid(tile)
    d2 = np.full(yy.shape, np.inf)
    for x0, y0 in pts:  # loop over ~100-200 points; each step is one vectorised pass
        np.minimum(d2, (xx - x0) ** 2 + (yy - y0) ** 2, out=d2)
    dist = np.sqrt(d2)
    # Anti-aliased edge: full weight within half_width, fading to 0 over the next pixel.
    return np.clip(half_width + 0.5 - dist, 0.0, 1.0)


def _plant_scratch(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a scratch into ``img`` (float); return (new image, alpha)."""
    alpha = _scratch_alpha(img.shape[0], rng)
    # Real scratches on brick expose lighter material more often than they darken it.
    colour = rng.uniform(225.0, 250.0) if rng.uniform() < 0.7 else rng.uniform(15.0, 35.0)
    strength = rng.uniform(0.8, 1.0)
    a = alpha * strength
    return img * (1 - a) + colour * a, alpha


def _plant_stain(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a soft-edged darker or lighter blotch into ``img``; return (image, alpha)."""
    alpha = _blob_alpha(img.shape[0], rng, (0.06, 0.18), edge_px=rng.uniform(3.0, 6.0))
    if rng.uniform() < 0.65:
        # Damp / oil stain: multiplicative darkening keeps the texture visible through it.
        factor = rng.uniform(0.45, 0.62)
        out = img * (1 - alpha * (1 - factor))
    else:
        # Paint / efflorescence: pull towards a light grey, still keeping some texture.
        light = rng.uniform(215.0, 240.0)
        out = img + alpha * rng.uniform(0.45, 0.6) * (light - img)
    return out, alpha


def _plant_hole(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a dark irregular hole into ``img``; return (image, alpha)."""
    alpha = _blob_alpha(img.shape[0], rng, (0.05, 0.12), edge_px=rng.uniform(1.5, 2.5))
    # A hole's floor is dark with faint residual texture and a little sensor noise.
    floor = rng.uniform(18.0, 32.0) + 0.15 * (img - img.mean())
    floor = floor + rng.normal(0.0, 3.0, img.shape)
    return img * (1 - alpha) + floor * alpha, alpha


_PLANTERS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": _plant_scratch,
    "stain": _plant_stain,
    "hole": _plant_hole,
}


def plant_defect(
    tile_img: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Plant one defect of type ``kind`` into a clean uint8 tile.

    Returns ``(image, mask)``: the uint8 defective image and a uint8 mask that is 255
    exactly where the defect was blended in and 0 elsewhere. Pixels outside the mask
    are left byte-identical to ``tile_img``.
    """
    if kind not in _PLANTERS:
        raise ValueError(f"unknown defect type {kind!r}; expected one of {DEFECT_TYPES}")
    clean = tile_img.astype(np.float64)
    out, alpha = _PLANTERS[kind](clean, rng)
    inside = alpha > 0
    # Copy only the blended pixels so the outside stays bit-exact (no float round trip).
    result = tile_img.copy()
    result[inside] = np.clip(np.rint(out[inside]), 0, 255).astype(np.uint8)
    mask = np.where(inside, 255, 0).astype(np.uint8)
    return result, mask


# --------------------------------------------------------------------------- building
