"""Image preprocessing exactly as the reference implementation does it, and its inverse.

Reference order (docs/patchcore-spec.md section 1): PIL image -> RGB -> resize the shorter side with
PIL's bilinear filter (as a PIL image, so it antialiases and rounds to 8 bit) ->
center crop -> float tensor in [0, 1] -> normalise. torchvision's functional
transforms on PIL images are used so the arithmetic is the reference's own.

Crop mode "none" (``train --crop none``, issue 13): the whole image is resized to
``crop`` x ``crop`` (= resize x resize; the aspect ratio is not kept) with the same
filter, and nothing is cut off: maps cover the whole original image. Resize 256 +
centre crop 224 leaves the outer 6.25 % at each edge of a square image (23 % of its
area) uninspected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: "center": the reference's resize of the shorter side + centre crop; "none": the whole
#: image resized to crop x crop (aspect not kept).
CROP_MODES: tuple[str, ...] = ("center", "none")


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
    crop_mode: str = "center"

    def __post_init__(self) -> None:
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, got {self.crop_mode!r}")
        if self.crop_mode == "none" and self.resize not in (0, self.crop):
            raise ValueError(f"crop mode none inspects the whole image resized to {self.crop} x {self.crop}: "
                             f"resize must equal it (got resize {self.resize})")

    @property
    def whole(self) -> bool:
        """True when the whole image is inspected (crop mode none): nothing is cut off."""
        return self.crop_mode == "none"

    def layout(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(width, height) of the resized image and (left, top) of the crop in it, for an original
        of ``width`` x ``height``: where the network's input sits on the original image."""
        if self.whole:
            return self.crop, self.crop, 0, 0
        rw, rh = resized_size(width, height, self.resize) if self.resize > 0 else (width, height)
        left, top = crop_offsets(rw, rh, self.crop)
        return rw, rh, left, top

    def _geometry(self, img: Image.Image) -> Image.Image:
        if self.whole:
            return TF.resize(img, [self.crop, self.crop], interpolation=TF.InterpolationMode.BILINEAR)
        if self.resize > 0:
            img = TF.resize(img, [self.resize], interpolation=TF.InterpolationMode.BILINEAR)
        return TF.center_crop(img, [self.crop, self.crop])

    def pil(self, img: Image.Image) -> Image.Image:
        """Resize and crop, returning the 8-bit PIL image the network sees."""
        return self._geometry(img)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return TF.normalize(TF.to_tensor(self.pil(img)), list(self.mean), list(self.std))

    def mask(self, mask: Image.Image) -> torch.Tensor:
        """Ground-truth mask through the same geometry, binarised: float32 (1, crop, crop)."""
        return (TF.to_tensor(self._geometry(mask.convert("L"))) > 0.5).float()

    def to_original(self, amap: np.ndarray, width: int, height: int,
                    out_width: int | None = None, out_height: int | None = None) -> np.ndarray:
        """Map a (crop, crop) map back onto the original image's (height, width) pixel grid.

        Undoes the center crop and the resize with bilinear sampling at pixel centres.
        Pixels the model never saw (cut off by the crop) are NaN; in crop mode none
        there are none. ``out_width`` / ``out_height`` sample the same geometry on a
        coarser grid covering the original image (thumbnails), without building the
        full-size map first.
        """
        ow = width if out_width is None else out_width
        oh = height if out_height is None else out_height
        rw, rh, left, top = self.layout(width, height)
        # Pixel centres of the original image in resized coordinates, then in crop ones.
        ys = (np.arange(oh) + 0.5) * (rh / oh) - 0.5 - top
        xs = (np.arange(ow) + 0.5) * (rw / ow) - 0.5 - left
        return _bilinear_sample(np.asarray(amap, dtype=np.float32), ys, xs)

    def coverage_note(self) -> str:
        """What the model inspects, in words (the training dialog, ``info``, the model card)."""
        if self.whole:
            return f"whole image resized to {self.crop} x {self.crop} (no centre crop; aspect not kept)"
        if self.resize <= 0:
            return f"centre crop {self.crop} px of the image as it is (no resize)"
        edge = (self.resize - self.crop) / (2.0 * self.resize)
        area = 1.0 - (self.crop / self.resize) ** 2
        return (f"centre crop {self.crop} of {self.resize}: the outer {100 * edge:.3g} % at each edge "
                f"({100 * area:.0f} % of a square image's area, more of an oblong one) is not inspected")


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
