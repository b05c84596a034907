"""Small pictures of every training image's inspected area, kept inside the model file.

Evidence (``core/evidence.py``) shows the nearest normal patch as a place in a real
training image; these pictures make that work when the training folder is gone.

* What: the preprocessed crop (resize + centre crop, the 8-bit image the network sees
  before normalisation, i.e. the de-normalised input), ``PICTURE_SIZE`` px square,
  JPEG at ``JPEG_QUALITY``; 96 or 64 px (``LADDER``) when that would exceed the issue's
  budget (``budget_bytes``: 20 % of the file, 20 kB an image), e.g. with a tiny coreset.
* Where: two tensors in the model's ``extra_tensors``: ``BLOB_KEY`` (uint8, every JPEG
  back to back) and ``OFFSETS_KEY`` (int64, n + 1 offsets; picture i is
  ``blob[offsets[i]:offsets[i + 1]]``, empty when the image could not be re-read).
  Training-image index i is the one ``bank_source`` and ``training_files`` use.
* When: at the end of training, by re-decoding the training files (the feature pass
  is not slowed), and for taught images by ``core/teach.py``.

Size, measured on crops of real photographs (README, docs/evidence-teach.md): about
5.2 kB a picture at 128 px / quality 85, i.e. 5.2 MB for 1,000 training images.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .preprocess import Preprocess

#: Side of each stored picture in pixels (the crop is resized to it).
PICTURE_SIZE = 128
#: JPEG quality of the stored pictures.
JPEG_QUALITY = 85
#: (side, JPEG quality) tried in turn until the pictures fit the budget (``budget_bytes``).
LADDER: tuple[tuple[int, int], ...] = ((PICTURE_SIZE, JPEG_QUALITY), (96, 75), (64, 70))
#: The issue's budget: pictures add at most this share of the model file ...
BUDGET_SHARE = 0.2
#: ... and at most 20 MB per 1,000 training images.
BUDGET_PER_IMAGE = 20_000
#: Keys of the two tensors in ``PatchCoreModel.extra_tensors``.
BLOB_KEY = "training_pictures.jpeg"
OFFSETS_KEY = "training_pictures.offsets"
#: What evidence says when a model file has no pictures.
UNAVAILABLE = "training pictures unavailable (model file made before they were stored)"


def encode_picture(img: Image.Image, preprocess: Preprocess, size: int = PICTURE_SIZE,
                   quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of ``img``'s inspected area (``preprocess.pil``) at ``size`` x ``size``."""
    crop = preprocess.pil(img.convert("RGB"))
    small = crop.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=int(quality), optimize=True)
    return buf.getvalue()


def encode_files(paths: Sequence[str | os.PathLike[str]], preprocess: Preprocess,
                 size: int = PICTURE_SIZE, quality: int = JPEG_QUALITY) -> list[bytes]:
    """One JPEG per path; ``b""`` for a file that can no longer be read (its picture is missing)."""
    from ..io.images import ImageLoadError, load_image

    out: list[bytes] = []
    for p in paths:
        try:
            out.append(encode_picture(load_image(p), preprocess, size, quality))
        except (ImageLoadError, OSError):
            out.append(b"")
    return out


def pack(pictures: Sequence[bytes]) -> dict[str, torch.Tensor]:
    """The two extra tensors holding ``pictures`` (blob and offsets)."""
    sizes = np.array([len(b) for b in pictures], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    blob = np.frombuffer(b"".join(pictures), dtype=np.uint8).copy() if offsets[-1] else np.zeros(0, np.uint8)
    return {BLOB_KEY: torch.from_numpy(blob), OFFSETS_KEY: torch.from_numpy(offsets)}


def unpack(extra: Mapping[str, torch.Tensor] | None) -> list[bytes] | None:
    """The pictures stored in ``extra`` (None when there are none, or they are inconsistent)."""
    if not extra or BLOB_KEY not in extra or OFFSETS_KEY not in extra:
        return None
    blob = extra[BLOB_KEY].detach().cpu().numpy().astype(np.uint8, copy=False).tobytes()
    offsets = extra[OFFSETS_KEY].detach().cpu().numpy().astype(np.int64)
    # A hostile or damaged file must not index out of the blob: refuse it as a whole.
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != len(blob) \
            or np.any(np.diff(offsets) < 0):
        return None
    return [blob[offsets[i]:offsets[i + 1]] for i in range(offsets.size - 1)]


def appended(extra: Mapping[str, torch.Tensor] | None, more: Sequence[bytes],
             existing_count: int) -> dict[str, torch.Tensor]:
    """``extra``'s pictures followed by ``more`` (a model without pictures gets empty
    entries for its ``existing_count`` old images, so indices stay aligned)."""
    old = unpack(extra)
    if old is None:
        old = [b""] * int(existing_count)
    return pack([*old, *more])


class TrainingPictures:
    """Read access to the stored pictures: ``get(i)`` -> PIL image or None."""

    def __init__(self, pictures: Sequence[bytes] | None) -> None:
        self._pictures = list(pictures) if pictures is not None else None

    @classmethod
    def of(cls, model: object) -> TrainingPictures:
        """The pictures of a ``PatchCoreModel`` (unavailable for old files)."""
        return cls(unpack(getattr(model, "extra_tensors", None)))

    @property
    def available(self) -> bool:
        """True when the model file carries pictures at all."""
        return self._pictures is not None

    def __len__(self) -> int:
        return len(self._pictures or [])

    def jpeg(self, index: int) -> bytes:
        """The JPEG bytes of training image ``index`` (b"" when missing)."""
        if self._pictures is None or not 0 <= index < len(self._pictures):
            return b""
        return self._pictures[index]

    def get(self, index: int) -> Image.Image | None:
        """Training image ``index``'s picture as RGB, or None when it is missing or undecodable."""
        data = self.jpeg(index)
        if not data:
            return None
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.convert("RGB")
        except Exception:  # a damaged picture is "missing", never a crash in the evidence view
            return None


def model_bytes(model: Any) -> int:
    """Tensor bytes of ``model``'s file without pictures: bank, provenance, backbone, other extras."""
    n = int(model.bank.numel()) * 4
    src = getattr(model, "bank_source", None)
    n += 0 if src is None else int(np.asarray(src).nbytes)
    n += sum(int(v.numel()) * v.element_size() for v in model.extractor.state_dict().values())
    extra = getattr(model, "extra_tensors", None) or {}
    n += sum(int(v.numel()) * v.element_size() for k, v in extra.items() if k not in (BLOB_KEY, OFFSETS_KEY))
    return n


def budget_bytes(model: Any, n_images: int) -> int:
    """The most bytes ``n_images`` pictures may take in ``model``'s file (the issue's budget)."""
    return int(min(BUDGET_SHARE * model_bytes(model), BUDGET_PER_IMAGE * n_images))


def stored_format(extra: Mapping[str, torch.Tensor] | None) -> tuple[int, int]:
    """(side, quality) of the pictures already stored (the first rung for a model without any)."""
    for data in unpack(extra) or []:
        if data:
            try:
                with Image.open(io.BytesIO(data)) as im:
                    side = im.width
            except Exception:
                continue
            return next(((s, q) for s, q in LADDER if s == side), (side, LADDER[-1][1]))
    return LADDER[0]


def attach_pictures(model: Any, paths: Sequence[str | os.PathLike[str]]) -> Any:
    """Encode the pictures of ``paths`` (training order) into ``model.extra_tensors``; returns ``model``.

    The hook ``engine.train_model`` calls at the end of training (from the files: the
    feature pass is not slowed; a file unreadable by then gets an empty picture). The
    first rung of ``LADDER`` whose pictures fit ``budget_bytes`` is kept (the smallest
    when none does): 128 px unless the bank is small against the pictures (a tiny
    coreset), then 96 or 64 px.
    """
    extra = getattr(model, "extra_tensors", None)
    if extra is None:
        extra = {}
        model.extra_tensors = extra
    budget = budget_bytes(model, len(paths))
    for side, quality in LADDER:
        pictures = encode_files(paths, model.preprocess, side, quality)
        if sum(len(p) for p in pictures) <= budget:
            break
    extra.update(pack(pictures))
    return model
