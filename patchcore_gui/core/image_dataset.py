"""Feeding images to torch: a Dataset that turns paths into preprocessed tensors, and its collate.

``ImageDataset`` never raises, so one unreadable file becomes one error row instead of
stopping a run of thousands of images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..io.images import ImageLoadError, load_image
from .preprocess import Preprocess

#: Longest side / shortest side accepted when the model resizes. The resize scales the
#: shorter side up to ``resize``, so a 20000 x 1 file (a few hundred bytes) would become
#: a 1,440,000 x 72 image at resize 72 (10 s and 1.5 GB measured) and 5,120,000 x 256
#: at 256. Real sensors, line-scan included, stay far below 100:1; the centre crop
#: would only see a sliver of such an image anyway.
MAX_ASPECT_RATIO = 100


def check_aspect_ratio(size: tuple[int, int], preprocess: Preprocess) -> None:
    """Raise ImageLoadError when resizing an image of ``size`` would explode its area."""
    w, h = size
    if w < 1 or h < 1:
        raise ImageLoadError(f"empty image ({w} x {h} pixels)")
    if preprocess.resize > 0 and max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise ImageLoadError(
            f"aspect ratio too extreme: {w} x {h} pixels (limit {MAX_ASPECT_RATIO}:1, "
            "as the resize would enlarge it without bound)"
        )


def _one_line(exc: BaseException) -> str:
    """A one-line description of ``exc`` for an error row."""
    if isinstance(exc, ImageLoadError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class ImageDataset(Dataset):
    """Paths -> preprocessed tensors, with labels and masks; never raises on bad files.

    Module level and holding only picklable state, because DataLoader workers are
    started with "spawn" and receive the dataset by pickling.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        preprocess: Preprocess,
        labels: Sequence[int] | np.ndarray | None = None,
        mask_paths: Sequence[Path | None] | None = None,
    ) -> None:
        self.paths: list[str] = [os.fspath(p) for p in paths]
        self.preprocess = preprocess
        n = len(self.paths)
        self.labels: np.ndarray | None = None
        if labels is not None:
            self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
            if len(self.labels) != n:
                raise ValueError(f"{len(self.labels)} labels for {n} images")
        self.mask_paths: list[str | None] | None = None
        if mask_paths is not None:
            if len(mask_paths) != n:
                raise ValueError(f"{len(mask_paths)} mask paths for {n} images")
            self.mask_paths = [None if m is None else os.fspath(m) for m in mask_paths]

    def __len__(self) -> int:
        return len(self.paths)

    def _load_mask(self, path: str, size: tuple[int, int]) -> torch.Tensor | None:
        """The mask through the image's geometry, or None if it cannot be read."""
        try:
            mask = load_image(path)
            if mask.size != size:
                # A mask of another size would be cropped differently from its image;
                # stretching it onto the image's grid keeps the defect where it is.
                mask = mask.resize(size, resample=Image.Resampling.NEAREST)  # stays binary
            return self.preprocess.mask(mask).to(torch.float32)
        except Exception:
            # A bad mask only costs pixel metrics for this image; the image still counts.
            return None

    def __getitem__(self, i: int) -> dict[str, Any]:
        crop = self.preprocess.crop
        path = self.paths[i]
        label = int(self.labels[i]) if self.labels is not None else -1
        error = ""
        width = height = 0
        try:
            img = load_image(path)
            check_aspect_ratio(img.size, self.preprocess)
            image = self.preprocess(img).to(torch.float32).contiguous()
            if tuple(image.shape) != (3, crop, crop):
                raise ValueError(f"preprocessed to shape {tuple(image.shape)}")
            width, height = img.size
        except Exception as exc:
            # Never raise: one unreadable file must not abort a whole batch/run.
            error = _one_line(exc) or "unreadable image"
            image = torch.zeros(3, crop, crop, dtype=torch.float32)
            width = height = 0

        mask: torch.Tensor | None = None
        mask_path = self.mask_paths[i] if self.mask_paths is not None else None
        if mask_path is not None and not error:
            mask = self._load_mask(mask_path, (width, height))
        has_mask = mask is not None
        if mask is None:
            mask = torch.zeros(1, crop, crop, dtype=torch.float32)

        return {
            "image": image,
            "index": int(i),
            "path": path,
            "error": error,
            "label": label,
            "mask": mask,
            "has_mask": has_mask,
            "width": int(width),
            "height": int(height),
        }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine ``ImageDataset`` items into one batch dict (a DataLoader ``collate_fn``).

    "image" and "mask" are stacked; "index", "label", "width", "height" become int64
    tensors, "has_mask" a bool tensor; "path" and "error" stay lists of str.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "mask": torch.stack([b["mask"] for b in batch]),
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.int64),
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.int64),
        "width": torch.tensor([b["width"] for b in batch], dtype=torch.int64),
        "height": torch.tensor([b["height"] for b in batch], dtype=torch.int64),
        "has_mask": torch.tensor([bool(b["has_mask"]) for b in batch], dtype=torch.bool),
        "path": [str(b["path"]) for b in batch],
        "error": [str(b["error"]) for b in batch],
    }
