"""Locally aware patch features (docs/patchcore-spec.md section 2).

Two embeddings:

* ``"reference"``: the official code's layout. Per layer, each (C, p, p) patch is
  flattened and adaptive-average-pooled to ``pretrain_dim``; layers are stacked and
  pooled again to ``target_dim``. For the default configuration (layer2 512 ch +
  layer3 1024 ch, p = 3, 1024 / 1024) that collapses to a closed form of two 3 x 3
  average pools, which is what runs there; everything else runs the general path.
* ``"native"``: anomalib's layout, the raw concatenation of 3 x 3 average-pooled
  layers (C1 + C2 dims). For small backbones it carries the same information in far
  fewer dimensions (docs/patchcore-spec.md section 9).

Rows come out ordered (image, y, x) on the first layer's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class EmbeddingConfig:
    """How patch features are built from backbone layers."""

    mode: str = "reference"  # "reference" or "native"
    patch_size: int = 3
    pretrain_dim: int = 1024
    target_dim: int = 1024

    def output_dim(self, channels: Sequence[int]) -> int:
        """Feature dimension produced for layers with these channel counts."""
        return self.target_dim if self.mode == "reference" else int(sum(channels))


def _is_closed_form(cfg: EmbeddingConfig, channels: Sequence[int]) -> bool:
    """True when the reference layout reduces exactly to the closed form."""
    return (
        cfg.mode == "reference"
        and cfg.patch_size == 3
        and list(channels) == [512, 1024]
        and cfg.pretrain_dim == 1024
        and cfg.target_dim == 1024
    )


def embed(feats: Sequence[torch.Tensor], cfg: EmbeddingConfig) -> tuple[torch.Tensor, tuple[int, int]]:
    """Patch features (B, h*w, D) and the grid (h, w) from per-layer maps (B, C, h, w).

    The first layer sets the grid; deeper layers are aligned to it bilinearly.
    """
    channels = [int(f.shape[1]) for f in feats]
    if cfg.mode == "native":
        return _embed_native(feats, cfg.patch_size)
    if cfg.mode != "reference":
        raise ValueError(f"unknown embedding mode {cfg.mode!r}")
    if _is_closed_form(cfg, channels):
        return _embed_closed_form(feats[0], feats[1])
    return _embed_general(feats, cfg)


def _embed_closed_form(f2: torch.Tensor, f3: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The default configuration in closed form (matches the general path to ~1e-6).

    Pooling 512*9 values to 1024 bins gives, per channel, the mean of taps 0-4 and of
    taps 4-8 of its 3 x 3 patch; the second stage averages those two, so the centre
    tap counts twice: (9 * avg3x3 + centre) / 10. For layer3, 1024*9 -> 1024 is the
    3 x 3 mean per channel and the second stage averages channel pairs.
    """
    b, _, h, w = f2.shape
    p2 = F.avg_pool2d(f2, 3, stride=1, padding=1, count_include_pad=True)
    part2 = (9.0 * p2 + f2) / 10.0
    p3 = F.avg_pool2d(f3, 3, stride=1, padding=1, count_include_pad=True)
    p3 = p3.reshape(b, p3.shape[1] // 2, 2, *p3.shape[2:]).mean(dim=2)
    if p3.shape[-2:] != (h, w):
        p3 = F.interpolate(p3, size=(h, w), mode="bilinear", align_corners=False)
    out = torch.cat([part2, p3], dim=1)  # (B, 1024, h, w)
    return out.permute(0, 2, 3, 1).reshape(b, h * w, -1), (h, w)


def _patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, p, p, h, w): every zero-padded p x p patch, stride 1."""
    b, c, h, w = x.shape
    cols = F.unfold(x, kernel_size=p, stride=1, padding=(p - 1) // 2, dilation=1)
    return cols.reshape(b, c, p, p, h, w)


def _embed_general(feats: Sequence[torch.Tensor], cfg: EmbeddingConfig) -> tuple[torch.Tensor, tuple[int, int]]:
    """The reference's Unfold + two adaptive_avg_pool1d stages, literally."""
    p = cfg.patch_size
    b, _, h0, w0 = feats[0].shape
    pooled = []
    for f in feats:
        patches = _patchify(f, p)  # (B, C, p, p, h, w)
        _, c, _, _, h, w = patches.shape
        if (h, w) != (h0, w0):
            # The reference interpolates every (c, py, px) plane of the patch tensor.
            planes = patches.reshape(b * c * p * p, 1, h, w)
            planes = F.interpolate(planes, size=(h0, w0), mode="bilinear", align_corners=False)
            patches = planes.reshape(b, c, p, p, h0, w0)
        rows = patches.permute(0, 4, 5, 1, 2, 3).reshape(b * h0 * w0, 1, c * p * p)
        pooled.append(F.adaptive_avg_pool1d(rows, cfg.pretrain_dim).squeeze(1))
    stacked = torch.stack(pooled, dim=1).reshape(b * h0 * w0, 1, -1)
    out = F.adaptive_avg_pool1d(stacked, cfg.target_dim).reshape(b, h0 * w0, cfg.target_dim)
    return out, (h0, w0)


def _embed_native(feats: Sequence[torch.Tensor], p: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """anomalib's layout: p x p average pool per layer, align, concatenate."""
    b, _, h0, w0 = feats[0].shape
    parts = []
    for f in feats:
        pf = F.avg_pool2d(f, p, stride=1, padding=(p - 1) // 2, count_include_pad=True)
        if pf.shape[-2:] != (h0, w0):
            pf = F.interpolate(pf, size=(h0, w0), mode="bilinear", align_corners=False)
        parts.append(pf)
    out = torch.cat(parts, dim=1)
    return out.permute(0, 2, 3, 1).reshape(b, h0 * w0, -1), (h0, w0)
