"""Training settings (the ``patchcore train`` options) and the per-backbone embedding default."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .features import EmbeddingConfig
from .preprocess import CROP_MODES


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the ``patchcore train`` options)."""

    backbone: str = "wide_resnet50_2"
    layers: tuple[str, ...] | None = None
    embedding: str | None = None  # None: the backbone's default layout
    resize: int = 256
    crop: int = 224
    coreset: float = 0.1
    k: int = 1
    seed: int = 0
    #: Retired (issue 13): calibration scores every training image out of bank. 0 still
    #: means "no calibration" (as ``calibrate=False``); any other value changes nothing.
    holdout: float | None = None
    #: Score every training image against the bank without its own rows and set the
    #: thresholds from those scores (core.out_of_bank, core.calibration).
    calibrate: bool = True
    #: Share of good parts the default thresholds reject (``train --false-reject``).
    false_reject: float = 0.01
    reweight: int = 0
    precision: str = "auto"  # backbone arithmetic while building the bank (see core.precision)
    # The official code's BatchNorm warm-up (backbones.official_bn_warmup); "none" skips it.
    bn_warmup: str = "official"
    extra: dict[str, Any] = field(default_factory=dict)
    #: "center" (resize + centre crop, the reference) or "none": the whole image resized to
    #: resize x resize (``train --crop none``; ``crop`` is then ignored and set to ``resize``).
    crop_mode: str = "center"


def resolve_crop(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the network's input size settled: crop mode none sets ``crop`` = ``resize``."""
    if cfg.crop_mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, got {cfg.crop_mode!r}")
    if cfg.crop_mode == "none":
        if cfg.resize < 32:
            raise ValueError(f"--crop none needs --resize 32 or more (the whole image is resized to "
                             f"resize x resize), got {cfg.resize}")
        return replace(cfg, crop=cfg.resize)
    return cfg


#: Per-backbone default embedding layout. The reference layout for the torchvision
#: backbones (parity with the official code); the native concatenation for the small
#: EfficientNet-Lite0, whose 152 real dims would otherwise be stretched to 1024 by
#: repetition (docs/patchcore-spec.md section 9).
DEFAULT_EMBEDDING = {"efficientnet_lite0": "native"}


def embedding_for(cfg: TrainConfig) -> EmbeddingConfig:
    mode = cfg.embedding or DEFAULT_EMBEDDING.get(cfg.backbone, "reference")
    if mode not in ("reference", "native"):
        raise ValueError(f"unknown embedding {mode!r}; use reference or native")
    return EmbeddingConfig(mode=mode)
