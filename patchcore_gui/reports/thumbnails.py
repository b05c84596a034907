"""Report thumbnails streamed in chunks: the original and the heatmap over it, as JPEG bytes.

Memory stays bounded for big runs: the maps of one chunk of images are computed in one
model call, rendered and dropped before the next chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..io.images import ImageLoadError
from . import render
from .context import ReportCancelled, ReportContext, ReportItem

THUMB_PX = 160
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Rendered:
    """Thumbnails of one report item: JPEG bytes (None when unavailable) and a note."""

    item: ReportItem
    original: bytes | None
    overlay: bytes | None
    note: str


def iter_rendered(ctx: ReportContext, size: int = THUMB_PX, chunk: int = 64,
                  cancel: threading.Event | None = None, items: list[ReportItem] | None = None) -> Iterator[Rendered]:
    """Thumbnails (original and heatmap overlay) of ``items`` (default ``ctx.selected``), streamed in chunks."""
    sel = ctx.selected if items is None else items
    for start in range(0, len(sel), chunk):
        part = sel[start : start + chunk]
        maps: dict[int, np.ndarray] = {}
        if ctx.model is not None and ctx.store is not None:
            grids = [(i, g) for i, g in ctx.store.iter_grids([it.index for it in part]) if g is not None]
            if grids:
                stacked = ctx.model.anomaly_maps(np.stack([g.astype(np.float32) for _, g in grids]))
                maps = {i: m for (i, _), m in zip(grids, stacked, strict=True)}
        for it in part:
            if cancel is not None and cancel.is_set():
                raise ReportCancelled("report export cancelled")
            amap = maps.get(it.index)
            try:
                thumb, over = render.thumbnail_pair(
                    it.path, size, model=ctx.model if amap is not None else None,
                    pixel_threshold=ctx.pixel_threshold, amap=amap, ng=it.verdict == "NG")
            except ImageLoadError as exc:
                yield Rendered(it, None, None, f"image unavailable: {exc}")
                continue
            yield Rendered(it, render.jpeg_bytes(thumb, JPEG_QUALITY),
                           None if over is None else render.jpeg_bytes(over, JPEG_QUALITY), "")


def histogram_png(ctx: ReportContext) -> bytes:
    """The score histogram with the threshold line (and the review band shaded), as PNG bytes."""
    return render.png_bytes(render.histogram_image(ctx.scores, ctx.threshold, ctx.labels, review_from=ctx.review_from))
