"""Image preprocessing exactly as the reference implementation does it, and its inverse.

Reference order (docs/patchcore-spec.md section 1): PIL image -> RGB -> resize the shorter side with
PIL's bilinear filter (as a PIL image, so it antialiases and rounds to 8 bit) ->
center crop -> float tensor in [0, 1] -> normalise. torchvision's functional
transforms on PIL images are used so the arithmetic is the reference's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def resized_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter side to ``resize`` as torchvision does.

    The longer side is ``int(resize * long / short)`` (truncated, not rounded).
    """
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def crop_offsets(width: int, height: int, crop: int) -> tuple[int, int]:
    """(left, top) of torchvision's center crop of size ``crop`` in an image of this size.

    Negative values mean the crop is larger than the image (torchvision pads).
    """
    return int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))


@dataclass(frozen=True)
class Preprocess:
    """Callable PIL RGB image -> normalised float32 tensor (3, crop, crop)."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def pil(self, img: Image.Image) -> Image.Image:
        """Resize and crop, returning the 8-bit PIL image the network sees."""
        if self.resize > 0:
            img = TF.resize(img, [self.resize], interpolation=TF.InterpolationMode.BILINEAR)
        return TF.center_crop(img, [self.crop, self.crop])

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return TF.normalize(TF.to_tensor(self.pil(img)), list(self.mean), list(self.std))

    def mask(self, mask: Image.Image) -> torch.Tensor:
        """Ground-truth mask through the same geometry, binarised: float32 (1, crop, crop)."""
        m = mask.convert("L")
        if self.resize > 0:
            m = TF.resize(m, [self.resize], interpolation=TF.InterpolationMode.BILINEAR)
        m = TF.center_crop(m, [self.crop, self.crop])
        return (TF.to_tensor(m) > 0.5).float()

    def to_original(self, amap: np.ndarray, width: int, height: int,
                    out_width: int | None = None, out_height: int | None = None) -> np.ndarray:
        """Map a (crop, crop) map back onto the original image's (height, width) pixel grid.

        Undoes the center crop and the resize with bilinear sampling at pixel centres.
        Pixels the model never saw (cut off by the crop) are NaN. ``out_width`` /
        ``out_height`` sample the same geometry on a coarser grid covering the original
        image (thumbnails), without building the full-size map first.
        """
        ow = width if out_width is None else out_width
        oh = height if out_height is None else out_height
        if self.resize > 0:
            rw, rh = resized_size(width, height, self.resize)
        else:
            rw, rh = width, height
        left, top = crop_offsets(rw, rh, self.crop)
        # Pixel centres of the original image in resized coordinates, then in crop ones.
        ys = (np.arange(oh) + 0.5) * (rh / oh) - 0.5 - top
        xs = (np.arange(ow) + 0.5) * (rw / ow) - 0.5 - left
        return _bilinear_sample(np.asarray(amap, dtype=np.float32), ys, xs)


def _axis_weights(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices, weights and validity for linear interpolation along one axis."""
    valid = (coords >= -0.5) & (coords <= size - 0.5)
    c = np.clip(coords, 0, size - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    w1 = (c - i0).astype(np.float32)
    return i0, i1, w1, valid


def _bilinear_sample(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Separable bilinear sampling of ``img`` at the grid ys x xs; NaN outside it."""
    h, w = img.shape
    y0, y1, wy, vy = _axis_weights(ys, h)
    x0, x1, wx, vx = _axis_weights(xs, w)
    rows = img[y0] * (1 - wy)[:, None] + img[y1] * wy[:, None]
    out = rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]
    out[~vy, :] = np.nan
    out[:, ~vx] = np.nan
    return out.astype(np.float32)
