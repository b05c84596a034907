"""Why a patch is flagged: its nearest normal patch, a real place in a real training image.

PatchCore's patch score is the (mean of k) squared distance from a query patch's
feature to its nearest memory-bank rows. The bank row carries its provenance
(``PatchCoreModel.bank_source``: training image index, patch index row-major in the
feature grid), so the nearest normal patch is a place in a training image, shown from
the model file's own picture of that image (``core/training_pictures.py``).

:class:`EvidenceFinder` embeds a query image once (cached for the last image: a click
on another patch of the same image costs one exact pass over the bank) and returns an
:class:`Evidence`: the chosen grid cell (the hottest by default), its patch score
against the image threshold and the smoothed map's value there against the pixel
threshold, the nearest bank row with its source, and the next few nearest *distinct*
training images.

Receptive-field box (an approximation, stated): a patch at grid cell (r, c) is drawn
as the square of ``patch_size`` grid strides (stride = crop / grid side) centred on the
cell's centre, clipped to the crop; i.e. the region the locally aware patch feature
aggregates at the grid's resolution. The backbone's theoretical receptive field is
larger (hundreds of pixels for layer3), but its effective field is concentrated on this
neighbourhood; the box says where to look, not every pixel that contributed.

Qt-free; the window's evidence view, ``patchcore explain`` and ``report --evidence`` use it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .maps import anomaly_map
from .preprocess import Preprocess
from .training_pictures import UNAVAILABLE, TrainingPictures

#: How many distinct training images besides the nearest one evidence lists.
OTHERS = 4
NO_PROVENANCE = "bank provenance unavailable (model file made before it was stored)"

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)


@dataclass(frozen=True)
class NormalPatch:
    """A bank row as a place in a training image."""

    bank_row: int
    distance: float  # squared L2 from the query patch's feature to this row
    image_index: int  # training image index, -1 when the model has no provenance
    path: str  # training file as recorded (relative), "" when unknown
    cell: tuple[int, int]  # (row, col) in the feature grid, (-1, -1) when unknown
    box: Box  # receptive-field box in crop pixels (zeros when unknown)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else ""


@dataclass(frozen=True)
class Evidence:
    """The evidence for one patch of one query image (``to_json`` for scripts)."""

    image: str
    image_size: tuple[int, int]  # original (width, height)
    crop: int
    grid: tuple[int, int]  # (rows, cols)
    cell: tuple[int, int]  # (row, col) explained
    hottest: bool  # the cell is the image's hottest patch
    box: Box  # query patch's box in crop pixels
    box_original: Box  # the same box in original-image pixels
    patch_score: float  # the model's score of this patch (mean of k nearest), cf. image threshold
    map_value: float  # the anomaly map at the box centre, cf. pixel threshold
    image_score: float
    image_threshold: float
    pixel_threshold: float
    nearest: NormalPatch
    others: list[NormalPatch] = field(default_factory=list)
    pictures: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (NaN as None), with the nearest image's name spelled out."""
        d = asdict(self)
        d["nearest"]["name"] = self.nearest.name
        for o, src in zip(d["others"], self.others, strict=True):
            o["name"] = src.name
        return _json_safe(d)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- geometry


def original_to_crop(preprocess: Preprocess, width: int, height: int, x: float, y: float) -> tuple[float, float]:
    """A point in original-image pixels -> crop pixels (through resize and centre crop, or the
    whole-image resize of crop mode none: ``Preprocess.layout``)."""
    rw, rh, left, top = preprocess.layout(width, height)
    return x * rw / width - left, y * rh / height - top


def crop_to_original(preprocess: Preprocess, width: int, height: int, x: float, y: float) -> tuple[float, float]:
    """A point in crop pixels -> original-image pixels (the inverse of :func:`original_to_crop`)."""
    rw, rh, left, top = preprocess.layout(width, height)
    return (x + left) * width / rw, (y + top) * height / rh


def cell_at(grid: tuple[int, int], crop: int, x: float, y: float) -> tuple[int, int]:
    """The grid cell (row, col) under crop pixel (x, y), clamped to the grid."""
    h, w = grid
    col = min(max(int(math.floor(x * w / crop)), 0), w - 1)
    row = min(max(int(math.floor(y * h / crop)), 0), h - 1)
    return row, col


def cell_box(grid: tuple[int, int], crop: int, cell: tuple[int, int], patch_size: int) -> Box:
    """The receptive-field box (module docstring) of ``cell`` in crop pixels."""
    h, w = grid
    sy, sx = crop / h, crop / w
    cy, cx = (cell[0] + 0.5) * sy, (cell[1] + 0.5) * sx
    hy, hx = patch_size * sy / 2.0, patch_size * sx / 2.0
    return (max(0.0, cx - hx), max(0.0, cy - hy), min(float(crop), cx + hx), min(float(crop), cy + hy))


# --------------------------------------------------------------------------- finder


@dataclass
class _Query:
    key: tuple[str, float]
    feats: torch.Tensor  # (h*w, D) float32 on the CPU
    grid: np.ndarray  # (h, w) float32 patch scores
    score: float
    size: tuple[int, int]


class EvidenceFinder:
    """Evidence for a model; keeps the last query image's features (one backbone pass each)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.pictures = TrainingPictures.of(model)
        src = getattr(model, "bank_source", None)
        self.bank_source = None if src is None else np.asarray(src, dtype=np.int64)
        self.training_files: list[dict[str, str]] = list(getattr(model, "training_files", None) or [])
        self._last: _Query | None = None

    def _query(self, image: str | os.PathLike[str] | Image.Image) -> _Query:
        from .uri_listing import load_any_image

        if isinstance(image, Image.Image):
            key, img = (f"<image {id(image)}>", 0.0), image.convert("RGB")
        else:
            p = os.fspath(image)
            try:
                key = (p, os.stat(p).st_mtime)
            except OSError:
                key = (p, -1.0)
            if self._last is not None and self._last.key == key:
                return self._last
            img = load_any_image(p)
        m = self.model
        x = m.preprocess(img)[None]
        feats, (h, w) = m.embed(x)
        f = feats[0].to("cpu", torch.float32).contiguous()
        dist, _ = m.search.search(feats[0], m.config.k)
        grid = np.mean(dist, axis=-1).astype(np.float32).reshape(h, w)
        score, _ = m.score_tensor(x) if m.config.reweight > 0 else (np.array([grid.max()]), None)
        self._last = _Query(key, f, grid, float(score[0]), img.size)
        return self._last

    def _place(self, row: int, distance: float) -> NormalPatch:
        grid = self._grid
        if self.bank_source is None or not 0 <= row < len(self.bank_source):
            return NormalPatch(row, distance, -1, "", (-1, -1), (0.0, 0.0, 0.0, 0.0))
        img_i, patch_i = (int(v) for v in self.bank_source[row])
        cell = (patch_i // grid[1], patch_i % grid[1])
        path = self.training_files[img_i]["path"] if 0 <= img_i < len(self.training_files) else ""
        box = cell_box(grid, self.model.config.crop, cell, self._patch_size)
        return NormalPatch(row, distance, img_i, path, cell, box)

    @property
    def _patch_size(self) -> int:
        return int(self.model.config.embedding.patch_size)

    def explain(self, image: str | os.PathLike[str] | Image.Image, *, at: tuple[float, float] | None = None,
                cell: tuple[int, int] | None = None, others: int = OTHERS) -> Evidence:
        """Evidence for the patch at original pixel ``at`` (x, y), or grid ``cell``, else the hottest.

        One exact pass over the bank for the chosen patch (squared L2, float32) gives the
        nearest row and, through provenance, the nearest distinct training images.
        """
        q = self._query(image)
        m = self.model
        h, w = q.grid.shape
        self._grid = (h, w)
        crop = int(m.config.crop)
        hottest_cell = tuple(int(v) for v in np.unravel_index(int(np.argmax(q.grid)), q.grid.shape))
        if cell is None and at is not None:
            cx, cy = original_to_crop(m.preprocess, q.size[0], q.size[1], float(at[0]), float(at[1]))
            cell = cell_at((h, w), crop, cx, cy)
        if cell is None:
            cell = hottest_cell  # type: ignore[assignment]
        cell = (min(max(int(cell[0]), 0), h - 1), min(max(int(cell[1]), 0), w - 1))
        feat = q.feats[cell[0] * w + cell[1]]
        bank = m.bank
        d = ((bank - feat[None, :]) ** 2).sum(dim=1).numpy()
        order = np.argsort(d, kind="stable")
        nearest = self._place(int(order[0]), float(d[order[0]]))
        rest: list[NormalPatch] = []
        if self.bank_source is not None:
            seen = {nearest.image_index}
            for r in order[1:]:
                img_i = int(self.bank_source[int(r), 0])
                if img_i in seen:
                    continue
                seen.add(img_i)
                rest.append(self._place(int(r), float(d[r])))
                if len(rest) >= others:
                    break
        box = cell_box((h, w), crop, cell, self._patch_size)
        x0, y0 = crop_to_original(m.preprocess, q.size[0], q.size[1], box[0], box[1])
        x1, y1 = crop_to_original(m.preprocess, q.size[0], q.size[1], box[2], box[3])
        amap = anomaly_map(q.grid, crop)
        my = min(int((box[1] + box[3]) / 2), crop - 1)
        mx = min(int((box[0] + box[2]) / 2), crop - 1)
        notes = []
        if self.bank_source is None:
            notes.append(NO_PROVENANCE)
        if not self.pictures.available:
            notes.append(UNAVAILABLE)
        name = image if isinstance(image, Image.Image) else os.fspath(image)
        return Evidence(
            image=str(name) if not isinstance(name, Image.Image) else "",
            image_size=(int(q.size[0]), int(q.size[1])),
            crop=crop,
            grid=(h, w),
            cell=cell,
            hottest=cell == hottest_cell,
            box=box,
            box_original=(x0, y0, x1, y1),
            patch_score=float(q.grid[cell]),
            map_value=float(amap[my, mx]),
            image_score=q.score,
            image_threshold=float(m.image_threshold),
            pixel_threshold=float(m.pixel_threshold),
            nearest=nearest,
            others=rest,
            pictures=self.pictures.available,
            notes=notes,
        )

    def picture(self, place: NormalPatch) -> Image.Image | None:
        """The stored picture of ``place``'s training image (None when unavailable)."""
        return self.pictures.get(place.image_index) if place.image_index >= 0 else None


def explain(model: Any, image: str | os.PathLike[str] | Image.Image, at: tuple[float, float] | None = None) -> Evidence:
    """One-shot :meth:`EvidenceFinder.explain`."""
    return EvidenceFinder(model).explain(image, at=at)
