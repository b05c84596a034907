"""A trained PatchCore model: backbone, memory bank, search, thresholds, and its file.

``PatchCoreModel.predict`` mirrors the reference API (seed document): a DataLoader gives
``(scores, masks, labels_gt, masks_gt)``; one preprocessed batch tensor gives
``(scores, masks)``; a list of paths, PIL images or numpy arrays gives ``(scores, masks)``
without building a dataset. Scores are raw (max squared patch distance); the
normalised score ``score / image_threshold`` (1.0 at the threshold) is offered beside.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .backbones import FeatureExtractor, WeightsUnavailableError, get_spec, load_truncated
from .features import embed
from .maps import anomaly_maps, anomaly_maps_torch
from .model_config import ModelConfig, resolve_device
from .modelfile import (
    BACKBONE_PREFIX,
    BANK_KEY,
    BANK_SOURCE_KEY,
    EXTRA_PREFIX,
    ModelFileError,
    check_bank_source,
    read_model_file,
    save_model_file,
)
from .precision import (  # re-exported: callers import the precision API from here too
    PRECISION_CHOICES,
    PRECISIONS,
    PrecisionUnsupportedError,
    backbone_dtype,
    canonical_precision,
    fast_backbone,
    half_backbone_dtype,
    resolve_precision,
)
from .preprocess import Preprocess
from .provenance import provenance_note
from .reweight import eq7_weight
from .search import NearestNeighbourSearch
from .thresholds import metadata_with_threshold, threshold_summary

__all__ = [
    "PRECISIONS",
    "PRECISION_CHOICES",
    "ModelConfig",
    "PatchCoreModel",
    "PrecisionUnsupportedError",
    "half_backbone_dtype",
    "resolve_device",
    "resolve_precision",
]


class PatchCoreModel:
    """A usable model: call ``predict`` / ``score_tensor``; ``save`` and ``load`` a file."""

    def __init__(
        self,
        config: ModelConfig,
        extractor: FeatureExtractor,
        bank: torch.Tensor,
        metadata: dict[str, Any] | None = None,
        device: str | torch.device = "auto",
        path: str | os.PathLike[str] | None = None,
        precision: str = "auto",
        bank_source: np.ndarray | torch.Tensor | None = None,
        extra_tensors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """``bank_source``: (bank rows, 2) [training image index, grid patch index] or None
        (unknown: old files, imported models); ``extra_tensors``: tensors other features
        keep in the model file (saved under ``modelfile.EXTRA_PREFIX``, kept through load/save).
        """
        self.config = config
        self.device = resolve_device(device)
        #: What was asked for ("auto" re-resolves when the model moves to another device).
        self.requested_precision = precision
        self.precision = resolve_precision(precision, self.device)
        self.extractor = extractor.to(self.device).eval()
        self.bank = bank.detach().to("cpu", torch.float32).contiguous()
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.bank_source = bank_source  # type: ignore[assignment]  # the setter checks and converts
        self.extra_tensors: dict[str, torch.Tensor] = dict(extra_tensors or {})
        self.path = Path(path) if path is not None else None
        self._grid: tuple[int, int] | None = None
        self._setup_precision()

    def _setup_precision(self) -> None:
        """Choose the search and backbone arithmetic for ``self.precision`` on this device.

        exact: the exact search of ``core.search`` (blocked or pruned on the CPU) and the
        NCHW float32 backbone (parity).
        fast and half (``core.precision``): a batch-norm-folded channels-last copy of the
        backbone (the original stays for saving and for the exact path) under the mode's
        autocast dtype, and a candidate search in a principal subspace whose candidates
        are re-scored exactly in float32 (``reduced_search``).
        """
        self._half_dtype = backbone_dtype(self.precision, self.device)
        self._fast_extractor = fast_backbone(self.extractor, self.precision)
        if self._fast_extractor is not None:
            from .reduced_search import ReducedBoundSearch

            self.search = ReducedBoundSearch(self.bank, self.device)
        else:
            self.search = NearestNeighbourSearch(self.bank, self.device)
            # Channels-last convolutions round differently; the exact path is NCHW.
            self.extractor = self.extractor.to(memory_format=torch.contiguous_format)

    # ------------------------------------------------------------------ properties
    @property
    def preprocess(self) -> Preprocess:
        return self.config.preprocess

    @property
    def bank_size(self) -> int:
        return int(self.bank.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.bank.shape[1])

    @property
    def bank_source(self) -> np.ndarray | None:
        """(bank rows, 2) int32: the training image (index into ``training_files``) and the
        patch (row-major index in the feature grid) each bank row came from; None when unknown."""
        return self._bank_source

    @bank_source.setter
    def bank_source(self, value: np.ndarray | torch.Tensor | None) -> None:
        if value is None:
            self._bank_source: np.ndarray | None = None
            return
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.ndim != 2 or arr.shape != (self.bank_size, 2):
            raise ValueError(f"bank_source must have shape ({self.bank_size}, 2), got {arr.shape}")
        self._bank_source = np.ascontiguousarray(arr, dtype=np.int32)

    @property
    def training_files(self) -> list[dict[str, str]]:
        """[{"path", "sha256"}] of the readable training images, in bank_source's image
        order ([] for files made before provenance was recorded)."""
        return list(self.metadata.get("training", {}).get("files", []))

    @property
    def threshold_info(self) -> dict[str, Any]:
        return self.metadata.get("threshold", {})

    @property
    def image_threshold(self) -> float:
        """Raw-score image threshold (NG when score > threshold); NaN when none is set."""
        return float(self.threshold_info.get("image", float("nan")))

    @property
    def pixel_threshold(self) -> float:
        """Threshold on anomaly-map values for the defect contour; NaN when none is set."""
        return float(self.threshold_info.get("pixel", float("nan")))

    @property
    def review_from(self) -> float:
        """Start of the review band (issue 13): OK at or below it, REVIEW above it up to the
        image threshold, NG above the threshold. NaN when no band is set (the default)."""
        return float(self.threshold_info.get("review_from", float("nan")))

    @property
    def calibration_scores(self) -> np.ndarray:
        """One out-of-bank score per good training image (older models: their held-out
        images' scores; empty without calibration)."""
        return np.asarray(self.metadata.get("calibration", {}).get("scores", []), dtype=np.float64)

    def to(self, device: str | torch.device) -> PatchCoreModel:
        """Move the model to another device (rebuilding the search index there); returns self."""
        dev = resolve_device(device)
        if dev != self.device:
            precision = resolve_precision(self.requested_precision, dev)  # raises before anything moves
            self.device, self.precision = dev, precision
            self.extractor = self.extractor.to(dev).eval()
            self._setup_precision()
        return self

    def set_precision(self, precision: str) -> PatchCoreModel:
        """Switch arithmetic ("auto", "exact", "fast", "half"; old "fp32", "bf16"); returns self."""
        resolved = resolve_precision(precision, self.device)
        self.requested_precision = precision
        if resolved != self.precision:
            self.precision = resolved
            self._setup_precision()
        return self

    def normalized(self, scores: np.ndarray | float, threshold: float | None = None) -> np.ndarray:
        """``score / threshold``: 1.0 at the threshold, above 1 is NG. NaN without a threshold."""
        t = self.image_threshold if threshold is None else float(threshold)
        s = np.asarray(scores, dtype=np.float64)
        if not np.isfinite(t) or t <= 0:
            return np.full_like(s, np.nan)
        return s / t

    # ------------------------------------------------------------------ compute
    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch features (B, h*w, D) on the model's device, and the grid shape."""
        x = images.to(self.device, torch.float32, non_blocking=True)
        backbone = self.extractor
        if self._fast_extractor is not None:
            backbone = self._fast_extractor
            x = x.contiguous(memory_format=torch.channels_last)
        feats = None
        if self._half_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self._half_dtype):
                half = backbone(x)
            # float16 overflows above 65,504: such a batch is computed again in float32.
            if all(bool(torch.isfinite(v).all()) for v in half.values()):
                feats = {k: v.float() for k, v in half.items()}
        if feats is None:
            feats = backbone(x)
        return embed([feats[lay].contiguous() for lay in self.config.layers], self.config.embedding)

    @torch.no_grad()
    def score_tensor(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Raw image scores (B,) and patch-score grids (B, h, w), both float32."""
        feats, (h, w) = self.embed(images)
        b = feats.shape[0]
        # One search per image: BLAS sums a query row differently depending on how many
        # rows share the call, so per-image calls make an image's scores independent of
        # the batch it came in (a resumed run then matches an uninterrupted one exactly).
        grids = np.empty((b, h * w), dtype=np.float32)
        scores = np.empty(b, dtype=np.float32)
        if self.device.type == "cuda":
            # GPU arithmetic is not bit-reproducible anyway; one big search keeps it busy.
            dist_all, idx_all = self.search.search(feats.reshape(b * h * w, -1), self.config.k)
            dist_all, idx_all = dist_all.reshape(b, h * w, -1), idx_all.reshape(b, h * w, -1)
        for i in range(b):
            if self.device.type == "cuda":
                dist, idx = dist_all[i], idx_all[i]
            else:
                dist, idx = self.search.search(feats[i], self.config.k)
            patch = np.mean(dist, axis=-1).astype(np.float32)
            grids[i] = patch
            scores[i] = patch.max()
            if self.config.reweight > 0:
                scores[i] *= eq7_weight(self.search, self.bank, feats[i], patch, idx, self.config.reweight)
        self._grid = (h, w)
        return scores, grids.reshape(b, h, w)

    def anomaly_maps(self, grids: np.ndarray) -> np.ndarray:
        """(B, h, w) grids -> (B, crop, crop) maps (bilinear + Gaussian sigma 4).

        On CUDA the maps are computed on the GPU as two small matrix products (the same
        linear operator; float32 rounding apart); on the CPU by the reference's filter.
        """
        g = np.asarray(grids, dtype=np.float32)
        if self.device.type == "cuda":
            t = torch.from_numpy(np.ascontiguousarray(g)).to(self.device, non_blocking=True)
            return anomaly_maps_torch(t, self.config.crop).cpu().numpy()
        return anomaly_maps(g, self.config.crop)

    def map_to_original(self, amap: np.ndarray, width: int, height: int) -> np.ndarray:
        """A (crop, crop) map on the original image's pixel grid (NaN where cropped off)."""
        return self.preprocess.to_original(amap, width, height)

    def predict(self, data: Any) -> tuple[list, ...]:
        """Reference-style prediction.

        * ``torch.utils.data.DataLoader`` -> (scores, masks, labels_gt, masks_gt): lists of
          float, (crop, crop) float32 arrays, int labels, (crop, crop) binary masks.
          Batches may be dicts with ``image`` (and ``label``, ``mask``, ``error``) or tensors.
        * ``torch.Tensor`` (B, 3, crop, crop) preprocessed -> (scores, masks).
        * a path, PIL image or numpy array, or a list of them -> (scores, masks).
        """
        if isinstance(data, torch.utils.data.DataLoader):
            return self._predict_loader(data)
        if isinstance(data, torch.Tensor):
            if data.ndim == 3:
                data = data[None]
            scores, grids = self.score_tensor(data)
            return list(map(float, scores)), list(self.anomaly_maps(grids))
        items = data if isinstance(data, (list, tuple)) else [data]
        from .image_dataset import check_aspect_ratio

        pils = [_as_pil(item) for item in items]
        for img in pils:
            check_aspect_ratio(img.size, self.preprocess)
        batch = torch.stack([self.preprocess(img) for img in pils])
        scores, grids = self.score_tensor(batch)
        return list(map(float, scores)), list(self.anomaly_maps(grids))

    def _predict_loader(self, loader: torch.utils.data.DataLoader) -> tuple[list, list, list, list]:
        scores: list[float] = []
        masks: list[np.ndarray] = []
        labels: list[int] = []
        masks_gt: list[np.ndarray] = []
        for batch in loader:
            if isinstance(batch, dict):
                images = batch["image"]
                s, g = self.score_tensor(images)
                errs = batch.get("error")
                if errs is not None:
                    s = np.where([bool(e) for e in errs], np.nan, s).astype(np.float32)
                if "label" in batch:
                    labels.extend(int(v) for v in batch["label"])
                if "mask" in batch:
                    masks_gt.extend(m.squeeze(0).numpy().astype(np.uint8) for m in batch["mask"])
            else:
                images = batch[0] if isinstance(batch, (list, tuple)) else batch
                s, g = self.score_tensor(images)
            scores.extend(float(v) for v in s)
            masks.extend(self.anomaly_maps(g))
        return scores, masks, labels, masks_gt

    # ------------------------------------------------------------------ threshold
    def with_threshold(self, image_threshold: float | None, note: str = "", pixel_threshold: float | None = None,
                       **kwargs: Any) -> PatchCoreModel:
        """A copy (sharing tensors) whose metadata carries new thresholds and a history entry
        (``kwargs``: review_from, user, rule, source; see ``thresholds.metadata_with_threshold``).
        Raises ValueError (one line) for values no model can use."""
        new = copy.copy(self)
        new.metadata = metadata_with_threshold(self.metadata, image_threshold, note, pixel_threshold, **kwargs)
        new.extra_tensors = dict(self.extra_tensors)  # a new dict: adding to one leaves the other
        new.path = None
        return new

    # ------------------------------------------------------------------ file
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as one safetensors file, atomically."""
        tensors = {BANK_KEY: self.bank}
        for k, v in self.extractor.state_dict().items():
            tensors[BACKBONE_PREFIX + k] = v
        if self._bank_source is not None:
            tensors[BANK_SOURCE_KEY] = torch.from_numpy(self._bank_source)
        for k, v in self.extra_tensors.items():
            tensors[EXTRA_PREFIX + k] = v
        meta = dict(self.metadata)
        # Format 2 says whether the BatchNorms were warmed; a model built by hand from an
        # extractor nobody warmed (training and import always record it) was not.
        meta.setdefault("bn_warmup", "none")
        meta["config"] = self.config.to_json()
        meta["bank_rows"], meta["feature_dim"] = self.bank_size, self.feature_dim
        self.metadata = save_model_file(path, tensors, meta)
        self.path = Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "auto",
             precision: str = "auto") -> PatchCoreModel:
        """Load a model file (never unpickles); raises ModelFileError with one line."""
        canonical_precision(precision)  # an unknown name fails before the file is read
        tensors, meta = read_model_file(path)
        p = Path(path)
        try:
            config = ModelConfig.from_json(meta["config"])
            get_spec(config.backbone)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ModelFileError(p, f"metadata does not describe a usable model ({exc})") from None
        bank = tensors.get(BANK_KEY)
        if bank is None or bank.ndim != 2 or bank.dtype != torch.float32:
            raise ModelFileError(p, "memory bank is not a 2-D float32 tensor")
        if meta.get("bank_rows") != bank.shape[0] or meta.get("feature_dim") != bank.shape[1]:
            raise ModelFileError(
                p, f"metadata says bank {meta.get('bank_rows')} x {meta.get('feature_dim')} "
                f"but the tensor is {bank.shape[0]} x {bank.shape[1]}"
            )
        if bank.shape[0] == 0:
            raise ModelFileError(p, "memory bank is empty")
        if BANK_SOURCE_KEY in tensors:
            check_bank_source(p, tensors[BANK_SOURCE_KEY], meta, int(bank.shape[0]))
        try:
            ext = FeatureExtractor(config.backbone, config.layers)
        except ValueError as exc:
            raise ModelFileError(p, str(exc)) from None
        sd = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items() if k.startswith(BACKBONE_PREFIX)}
        try:
            load_truncated(ext, sd, source=p.name)
        except WeightsUnavailableError as exc:
            raise ModelFileError(p, f"backbone weights do not fit: {exc}") from None
        expected = config.embedding.output_dim(ext.channels())
        if expected != bank.shape[1]:
            raise ModelFileError(p, f"bank has {bank.shape[1]} dims but the configuration produces {expected}")
        extras = {k[len(EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
        try:
            return cls(config, ext, bank, meta, device=device, path=p, precision=precision,
                       bank_source=tensors.get(BANK_SOURCE_KEY), extra_tensors=extras)
        except PrecisionUnsupportedError:
            raise  # about this machine, not about the file
        except ValueError as exc:
            raise ModelFileError(p, str(exc)) from None

    def summary(self) -> dict[str, Any]:
        """Plain facts for a model card or ``patchcore info``."""
        m = self.metadata
        return {
            "file": str(self.path) if self.path else "",
            "backbone": self.config.backbone,
            "layers": list(self.config.layers),
            "embedding": self.config.embedding.mode,
            "resize": self.config.resize,
            "crop": self.config.crop,
            "crop_mode": self.config.crop_mode,
            "coverage": self.preprocess.coverage_note(),
            "k": self.config.k,
            "bank_rows": self.bank_size,
            "feature_dim": self.feature_dim,
            "training_images": m.get("training", {}).get("image_count"),
            "coreset_fraction": m.get("coreset", {}).get("fraction"),
            "image_threshold": self.image_threshold,
            "pixel_threshold": self.pixel_threshold,
            **threshold_summary(m),  # rule, rate, count, review band, last changes
            "provenance": provenance_note(m, self._bank_source is not None),
            "bn_warmup": bn_warmup_label(m),
            "created": m.get("created", ""),
        }


def bn_warmup_label(meta: dict[str, Any]) -> str:
    """One line for ``info`` and the model card: were BatchNorm statistics warmed, and why not."""
    mode = meta.get("bn_warmup", "none")
    if mode == "official":
        return "official (one train-mode forward of ones, as patchcore-inspection)"
    note = meta.get("bn_warmup_note")
    return f"no BatchNorm warm-up ({note})" if note else "no BatchNorm warm-up (--bn-warmup none)"


def _as_pil(item: Any) -> Image.Image:
    """A path, PIL image or numpy array (H, W[, C], uint8 or float in [0, 1]) as RGB."""
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, (str, os.PathLike)):
        from ..io.images import load_image

        return load_image(item)
    arr = np.asarray(item)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64) * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L").convert("RGB")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(arr[..., :3], mode="RGB")
    raise ValueError(f"cannot use an array of shape {arr.shape} as an image")
