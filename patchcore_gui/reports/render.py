"""Qt-free pictures for reports: thumbnails, heatmap overlays with contours, histograms.

Everything is numpy + PIL, so the CLI can render without a display; the GUI may use the
same functions for exports.

* :func:`load_thumbnail` - a small RGB thumbnail and the original (EXIF-oriented) size;
  JPEGs are decoded at reduced scale (``draft``), so thousands of camera images stay fast.
* :func:`map_for_size` - an anomaly map (crop x crop) resampled onto any pixel grid that
  covers the original image (e.g. a thumbnail), undoing crop and resize; equal to
  ``model.map_to_original`` when the grid is the original's.
* :func:`overlay_heatmap` - the heatmap over the image exactly as the window paints it
  (``core/heatmap.py``: absolute scale 0 .. 2 x pixel threshold, the same colour map
  and opacity, the outline of the region above the threshold).
* :func:`histogram_image` - the score histogram with the threshold line (and the review
  band shaded between its start and the threshold).
* :func:`colorbar_image` - the legend of the heatmap colours.
* :func:`jpeg_bytes`, :func:`png_bytes` - encoders.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..core import heatmap
from ..core.preprocess import Preprocess
from ..io.images import MAX_PIXELS, ImageLoadError, load_image

#: The heatmap's colour scale spans 0 .. SCALE_FACTOR x pixel threshold (``core/heatmap.py``).
SCALE_FACTOR = heatmap.SCALE_FACTOR
#: The reports' colour map and opacity: the window's defaults.
LUT = heatmap.lookup_table(heatmap.DEFAULT_COLORMAP)
OVERLAY_ALPHA = heatmap.DEFAULT_OPACITY
CONTOUR_RGB = heatmap.OUTLINE_RGB

OK_RGB = (46, 125, 50)
NG_RGB = (198, 40, 40)
#: REVIEW: violet, apart from OK green, NG red and error grey (the window's REVIEW colour too).
REVIEW_RGB = (124, 77, 200)
#: The review band's shade on the histogram (a pale REVIEW_RGB).
BAND_RGB = (234, 225, 248)
ERROR_RGB = (117, 117, 117)


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's bundled scalable font at ``size`` px (bitmap fallback without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType
        return ImageFont.load_default()


def load_thumbnail(path: str | os.PathLike[str], size: int) -> tuple[Image.Image, tuple[int, int]]:
    """An RGB thumbnail fitting ``size`` x ``size`` and the original (width, height).

    The original size is the one :func:`load_image` reports (EXIF orientation applied).
    Raises ImageLoadError like ``load_image``.
    """
    try:
        with Image.open(path) as im:
            if im.format == "JPEG" and im.mode in ("RGB", "L"):
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageLoadError(f"image too large: {w} x {h} pixels (limit {MAX_PIXELS:,} pixels)")
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
                im.draft("RGB", (size, size))  # decode at 1/2, 1/4 or 1/8 scale: still >= size
                small = (ImageOps.exif_transpose(im) or im).convert("RGB")
                small.thumbnail((size, size), Image.Resampling.BILINEAR)
                return small, (w, h)
    except ImageLoadError:
        raise
    except Exception:  # load_image below gives the one-line reason
        pass
    img = load_image(path)
    full = img.size
    img.thumbnail((size, size), Image.Resampling.BILINEAR)
    return img, full


def map_for_size(preprocess: Preprocess, amap: np.ndarray, orig_w: int, orig_h: int,
                 out_w: int, out_h: int) -> np.ndarray:
    """Resample a (crop, crop) map onto an ``out_h`` x ``out_w`` grid covering the original image.

    Bilinear at pixel centres through the model's resize and centre crop; NaN where the
    crop cut the image off. With ``out`` = original size this is ``model.map_to_original``.
    """
    return preprocess.to_original(amap, orig_w, orig_h, out_w, out_h)


def overlay_heatmap(base: Image.Image, amap: np.ndarray, pixel_threshold: float, *,
                    draw_contour: bool = True, ng: bool = False) -> Image.Image:
    """``base`` with the map (same pixel grid) painted over it as the window paints it.

    ``core.heatmap.paint``: the colour map on the absolute threshold scale at the
    window's default opacity, then the outline of map > threshold (NG-red when ``ng``,
    as the window colours an NG image's region). NaN (cropped-off) pixels stay as they are.
    """
    out = heatmap.paint(np.asarray(base.convert("RGB")), amap, pixel_threshold, opacity=OVERLAY_ALPHA,
                        draw_outline=draw_contour,
                        outline_rgb=heatmap.NG_OUTLINE_RGB if ng else heatmap.OUTLINE_RGB)
    return Image.fromarray(out, "RGB")


def colorbar_image(width: int = 720, height: int = 72, labels: bool = True) -> Image.Image:
    """Legend: the colour ramp with ticks at 0, the pixel threshold and SCALE_FACTOR x it.

    With ``labels=False`` only the ramp, filling the image (for callers that label it).
    """
    if not labels:
        ramp = LUT[np.linspace(0, 255, width).astype(np.uint8)]
        return Image.fromarray(np.repeat(ramp[None], height, axis=0), "RGB")
    img = Image.new("RGB", (width, height), "white")
    bar_h, pad = height // 2 - 2, 8
    ramp = LUT[np.linspace(0, 255, width - 2 * pad).astype(np.uint8)]
    img.paste(Image.fromarray(np.repeat(ramp[None], bar_h, axis=0), "RGB"), (pad, 2))
    d = ImageDraw.Draw(img)
    d.rectangle([pad, 2, width - pad - 1, bar_h + 2], outline=(90, 90, 90))
    f = font(max(10, height * 2 // 7))
    for frac, text in ((0.0, "0"), (1.0 / SCALE_FACTOR, "pixel threshold"), (1.0, f"{SCALE_FACTOR:g} x threshold")):
        x = pad + frac * (width - 2 * pad - 1)
        d.line([x, bar_h + 2, x, bar_h + 7], fill=(60, 60, 60), width=1)
        tw = d.textlength(text, font=f)
        d.text((min(max(x - tw / 2, 0), width - tw), bar_h + 8), text, fill=(40, 40, 40), font=f)
    return img


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 1e-9, step)]


def histogram_image(scores: np.ndarray, threshold: float, labels: np.ndarray | None = None, *,
                    width: int = 1200, height: int = 420, bins: int = 60,
                    review_from: float = float("nan")) -> Image.Image:
    """Score histogram (stacked good / defect / unknown when labels exist) with the threshold line.

    With a review band (``review_from`` finite, below the threshold) the band is shaded
    from its start to the threshold, behind the bars, with a line at its start.
    """
    band = bool(np.isfinite(review_from) and np.isfinite(threshold) and review_from < threshold)
    s = np.asarray(scores, dtype=np.float64)
    lab = np.full(s.shape, -1) if labels is None else np.asarray(labels)
    keep = np.isfinite(s)
    s, lab = s[keep], lab[keep]
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    f, fs = font(max(12, height // 24)), font(max(11, height // 28))
    left, right, top, bottom = 70, 20, 34, height - 50
    if s.size == 0:
        d.text((left, height // 2), "no scores", fill=(80, 80, 80), font=f)
        return img
    lo, hi = float(s.min()), float(s.max())
    if np.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    if band:
        lo = min(lo, review_from)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.03 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    groups = [
        ("good", (lab == 0), (76, 120, 168)),
        ("defect", (lab > 0), (230, 126, 34)),
        ("unknown", (lab < 0), (120, 144, 156)),
    ]
    counts = [np.histogram(s[m], edges)[0] for _, m, _ in groups]
    ymax = max(1, int(np.sum(counts, axis=0).max()))
    xpix = lambda v: left + (v - lo) / (hi - lo) * (width - left - right)  # noqa: E731
    ypix = lambda c: bottom - c / ymax * (bottom - top)  # noqa: E731
    for yv in _nice_ticks(0, ymax, 4):
        y = ypix(yv)
        d.line([left, y, width - right, y], fill=(232, 232, 232))
        txt = f"{yv:g}"
        d.text((left - 8 - d.textlength(txt, font=fs), y - 7), txt, fill=(90, 90, 90), font=fs)
    if band:  # behind the bars: a pale block from the band's start to the threshold
        d.rectangle([xpix(review_from), top - 6, xpix(threshold), bottom], fill=BAND_RGB)
    base = np.zeros(bins)
    for (_name, _m, rgb), c in zip(groups, counts, strict=True):
        for i in np.flatnonzero(c):
            x0, x1 = xpix(edges[i]) + 1, xpix(edges[i + 1]) - 1
            d.rectangle([x0, ypix(base[i] + c[i]), max(x0, x1), ypix(base[i])], fill=rgb)
        base += c
    d.line([left, bottom, width - right, bottom], fill=(60, 60, 60), width=2)
    for xv in _nice_ticks(lo, hi):
        x = xpix(xv)
        d.line([x, bottom, x, bottom + 6], fill=(60, 60, 60))
        txt = f"{xv:g}"
        d.text((x - d.textlength(txt, font=fs) / 2, bottom + 9), txt, fill=(60, 60, 60), font=fs)
    d.text(((width - d.textlength("raw score", font=fs)) / 2, bottom + 28), "raw score", fill=(60, 60, 60), font=fs)
    d.text((8, top - 26), "images", fill=(60, 60, 60), font=fs)
    if np.isfinite(threshold):
        x = xpix(threshold)
        for y in range(top - 6, bottom, 12):  # dashed
            d.line([x, y, x, min(y + 7, bottom)], fill=NG_RGB, width=3)
        txt = f"threshold {threshold:.4g}  (NG above)"
        tx = x + 6 if x + 6 + d.textlength(txt, font=f) < width - right else x - 6 - d.textlength(txt, font=f)
        d.text((tx, top - 26), txt, fill=NG_RGB, font=f)
    if band:
        x = xpix(review_from)
        for y in range(top - 6, bottom, 12):
            d.line([x, y, x, min(y + 7, bottom)], fill=REVIEW_RGB, width=3)
        txt = f"review from {review_from:.4g}"
        d.text((max(4.0, x - 6 - d.textlength(txt, font=fs)), top + 22), txt, fill=REVIEW_RGB, font=fs)
    present = [(n, rgb) for (n, m, rgb) in groups if m.any()]
    if len(present) > 1 or (present and present[0][0] != "unknown"):
        x = width - right - 10
        for name, rgb in reversed(present):
            tw = d.textlength(name, font=fs)
            x -= tw
            d.text((x, top + 2), name, fill=(50, 50, 50), font=fs)
            x -= 18
            d.rectangle([x, top + 5, x + 12, top + 17], fill=rgb)
            x -= 16
    return img


def jpeg_bytes(img: Image.Image, quality: int = 82) -> bytes:
    """JPEG encoding (RGB)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    """PNG encoding."""
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def thumbnail_pair(path: str | os.PathLike[str], size: int, *, grid: np.ndarray | None = None,
                   model: object | None = None, pixel_threshold: float = float("nan"),
                   amap: np.ndarray | None = None, ng: bool = False) -> tuple[Image.Image, Image.Image | None]:
    """(original thumbnail, overlay thumbnail or None) for one image.

    The overlay needs ``model`` (a PatchCoreModel: its ``anomaly_maps`` and preprocessing)
    with a ``grid``, or a precomputed (crop, crop) ``amap``, and a finite threshold;
    ``ng`` colours the region outline as the window does for an NG image.
    """
    thumb, (w, h) = load_thumbnail(path, size)
    if model is None or not np.isfinite(pixel_threshold) or pixel_threshold <= 0:
        return thumb, None
    if amap is None:
        if grid is None:
            return thumb, None
        amap = model.anomaly_maps(np.asarray(grid, dtype=np.float32)[None])[0]  # type: ignore[attr-defined]
    m = map_for_size(model.preprocess, amap, w, h, thumb.width, thumb.height)  # type: ignore[attr-defined]
    return thumb, overlay_heatmap(thumb, m, pixel_threshold, ng=ng)


def batch_maps(model: object, grids: Sequence[np.ndarray]) -> np.ndarray:
    """(B, crop, crop) maps for several float16/32 grids in one call."""
    return model.anomaly_maps(np.stack([np.asarray(g, dtype=np.float32) for g in grids]))  # type: ignore[attr-defined]
