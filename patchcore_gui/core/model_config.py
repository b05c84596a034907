"""The model's configuration (what rebuilds its feature pipeline) and device choice.

Kept apart from ``model.py`` so the model class stays one concept; ``core.model``
re-exports both names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .features import EmbeddingConfig
from .preprocess import Preprocess


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; a CUDA request without CUDA is a clear error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA device is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"CUDA device {dev.index} does not exist ({torch.cuda.device_count()} found)")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use auto, cpu or cuda[:N]")
    return dev


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the feature pipeline of a model."""

    backbone: str = "wide_resnet50_2"
    layers: tuple[str, ...] = ("layer2", "layer3")
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    k: int = 1
    #: Paper Eq. 7 re-weighting of the image score with this many bank neighbours of
    #: the nearest bank row (anomalib uses 9); 0 = off, as in the reference code.
    reweight: int = 0
    #: "center" (the reference's resize + centre crop) or "none": the whole image resized
    #: to crop x crop (``train --crop none``). Files made before it say nothing: "center".
    crop_mode: str = "center"

    def __post_init__(self) -> None:
        self.preprocess  # noqa: B018 - an impossible crop mode / size raises ValueError here, at load

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.resize, self.crop, tuple(self.mean), tuple(self.std), self.crop_mode)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(
            backbone=str(d["backbone"]),
            layers=tuple(str(x) for x in d["layers"]),
            embedding=EmbeddingConfig(**d["embedding"]),
            resize=int(d["resize"]),
            crop=int(d["crop"]),
            mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
            k=int(d["k"]),
            reweight=int(d.get("reweight", 0)),
            crop_mode=str(d.get("crop_mode", "center")),
        )
