"""How an anomaly map is painted, in one place: scale, colour map, opacity, region outline.

The window's image pane and the reports both paint through this module, so a
report's heatmap is the one the operator saw at the same threshold, colour map and
opacity.

* Scale: absolute and anchored to the model's pixel threshold, 0 .. ``SCALE_FACTOR``
  x threshold, never stretched per image: a good image stays cold, a defective one is
  hot, and two images compare by colour. The threshold sits mid-scale, where the
  colour maps turn warm.
* Colour map: a 256-entry lookup table (``core/colormaps.py``), inferno by default.
* Opacity: one alpha for every pixel inside the crop; NaN (cut off by the centre crop)
  is transparent.
* Region: the outline (inner edge, by binary erosion) of where the map is above the
  pixel threshold.

Qt-free numpy and scipy; nothing here draws on screen.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from . import colormaps

#: The colour scale spans 0 .. SCALE_FACTOR x pixel threshold.
SCALE_FACTOR = 2.0
#: Colour maps offered; the first is the default.
COLORMAPS: tuple[str, ...] = colormaps.NAMES
DEFAULT_COLORMAP = "inferno"
#: Heatmap opacity the window starts with (its slider's 55 %), and the reports use.
DEFAULT_OPACITY = 0.55
#: Outline of the region above the pixel threshold (white; NG-red on an NG image).
OUTLINE_RGB = (255, 255, 255)
NG_OUTLINE_RGB = (229, 83, 75)
#: Outline of a ground-truth defect mask (cyan).
TRUTH_RGB = (57, 208, 216)


def heat_levels(pixel_threshold: float, fallback: float = math.nan) -> tuple[float, float]:
    """(low, high) of the colour scale: 0 .. SCALE_FACTOR x pixel threshold.

    Without a usable pixel threshold (an uncalibrated model) ``fallback`` (the image
    threshold, or the batch's largest score) anchors the scale; without either, 1.
    """
    anchor = pixel_threshold if math.isfinite(pixel_threshold) and pixel_threshold > 0 else fallback
    if not math.isfinite(anchor) or anchor <= 0:
        anchor = 1.0
    return 0.0, SCALE_FACTOR * float(anchor)


def region_threshold(pixel_threshold: float, fallback: float = math.nan) -> float:
    """The value the region outline is drawn at: the pixel threshold, or the scale's middle."""
    if math.isfinite(pixel_threshold):
        return float(pixel_threshold)
    return sum(heat_levels(pixel_threshold, fallback)) / 2.0


def lookup_table(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """(256, 3) uint8 RGB table of colour map ``name``; an unknown name gives inferno."""
    return colormaps.table(name if name in colormaps.NAMES else DEFAULT_COLORMAP)


def colorize_levels(amap: np.ndarray, levels: tuple[float, float], lut: np.ndarray,
                    alpha: float = 1.0) -> np.ndarray:
    """(H, W) float map -> (H, W, 4) uint8 RGBA on the scale ``levels`` through ``lut``.

    Alpha is ``round(alpha x 255)`` inside the crop and 0 where the map is NaN. The
    window calls this with alpha 1 and sets the opacity on its layer instead, so an
    opacity move does not recolour.
    """
    lo, hi = levels
    scale = 255.0 / max(hi - lo, 1e-12)
    finite = np.isfinite(amap)
    idx = np.clip((np.nan_to_num(amap, nan=lo) - lo) * scale, 0, 255).astype(np.uint8, order="C")
    # One 4-byte lookup per pixel: ~5x faster than filling RGB and alpha separately
    # (~30 ms at 1024 x 1024, paid on every image shown).
    table = np.empty((256, 4), dtype=np.uint8)
    table[:, :3] = lut
    table[:, 3] = int(round(min(max(alpha, 0.0), 1.0) * 255))
    rgba = table.view(np.uint32).ravel()[idx].view(np.uint8).reshape(*amap.shape, 4)
    rgba[..., 3][~finite] = 0
    return rgba


def colorize(amap: np.ndarray, threshold: float, alpha: float = 1.0,
             colormap: str = DEFAULT_COLORMAP, fallback: float = math.nan) -> np.ndarray:
    """(H, W) float map -> (H, W, 4) uint8 RGBA on the absolute scale of pixel ``threshold``."""
    return colorize_levels(np.asarray(amap, dtype=np.float32), heat_levels(threshold, fallback),
                           lookup_table(colormap), alpha)


def outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boundary pixels of a boolean mask (inner edge), ``thickness`` pixels wide."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros_like(m)
    inner = ndimage.binary_erosion(m, iterations=max(1, thickness), border_value=0)
    return m & ~inner


def region_mask(amap: np.ndarray, threshold: float) -> np.ndarray:
    """Where the map is above ``threshold`` (NaN, outside the crop, is not)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(amap) > threshold


def region_outline(amap: np.ndarray, threshold: float, thickness: int = 1) -> np.ndarray:
    """The outline of the region above ``threshold``: what the window draws as "Region"."""
    return outline(region_mask(amap, threshold), thickness)


def line_thickness(width: int, height: int) -> int:
    """Outline width in image pixels: about 1/250 of the image, so it reads at fit-to-view."""
    return max(1, round(max(width, height) / 250))


def blend(base_rgb: np.ndarray, rgba: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """``rgba`` drawn over ``base_rgb`` (source over), the layer at ``opacity``: uint8 RGB."""
    a = rgba[..., 3:4].astype(np.float32) * (opacity / 255.0)
    out = base_rgb[..., :3].astype(np.float32) * (1.0 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def paint(base_rgb: np.ndarray, amap: np.ndarray, pixel_threshold: float, *,
          opacity: float = DEFAULT_OPACITY, colormap: str = DEFAULT_COLORMAP,
          fallback: float = math.nan, draw_outline: bool = True,
          outline_rgb: tuple[int, int, int] = OUTLINE_RGB, thickness: int | None = None) -> np.ndarray:
    """The heatmap over an image as the window shows it: (H, W, 3) uint8 RGB.

    ``amap`` is on ``base_rgb``'s pixel grid (NaN outside the crop). The heatmap is
    blended at ``opacity``; the region outline (opaque, ``outline_rgb``, ``thickness``
    pixels, by default :func:`line_thickness` of the image) is drawn on top, as the
    window layers them.
    """
    m = np.asarray(amap, dtype=np.float32)
    out = blend(np.asarray(base_rgb, dtype=np.uint8), colorize(m, pixel_threshold, 1.0, colormap, fallback), opacity)
    if draw_outline:
        h, w = m.shape
        t = region_threshold(pixel_threshold, fallback)
        out[region_outline(m, t, thickness or line_thickness(w, h))] = outline_rgb
    return out
