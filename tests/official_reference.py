"""An independent re-creation of what amazon-science/patchcore-inspection computes.

Written for the tests from the official source (``src/patchcore/common.py``,
``patchcore.py``, ``sampler.py``, ``datasets/mvtec.py``), step by step in the official
order, with none of this project's code: a full torchvision/timm network with forward
hooks that stop the forward by raising at the last requested layer, the BatchNorm
warm-up that ``PatchCore.load`` performs through ``feature_dimensions`` (one forward of
``torch.ones`` while the network is still in train mode), ``Unfold`` patches, the
permute/interpolate alignment of deeper layers, ``adaptive_avg_pool1d`` pre-embedding
and aggregation, faiss ``IndexFlatL2`` search, max over patches, bilinear upsampling
and ``scipy.ndimage.gaussian_filter(sigma=4)``. Constants (ImageNet mean/std) are
literals here, not the project's.

It is a test reference: slow where the official code is slow, and meant to fail
when the engine drifts from the official behaviour.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from scipy import ndimage

#: datasets/mvtec.py of the official code.
OFFICIAL_IMAGENET_MEAN = [0.485, 0.456, 0.406]
OFFICIAL_IMAGENET_STD = [0.229, 0.224, 0.225]


class _StopForward(Exception):
    pass


def official_transform(resize: int, crop: int, mean: Sequence[float] = OFFICIAL_IMAGENET_MEAN,
                       std: Sequence[float] = OFFICIAL_IMAGENET_STD) -> T.Compose:
    """The official MVTecDataset's image transform (PIL resize, centre crop, normalise)."""
    return T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), T.Normalize(mean=mean, std=std)])


def load_images(paths: Sequence[str | Path], resize: int, crop: int, **kw: Sequence[float]) -> torch.Tensor:
    tf = official_transform(resize, crop, **kw)
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])


def _layer_module(net: torch.nn.Module, name: str) -> torch.nn.Module:
    """The module the official ``NetworkFeatureAggregator`` hooks for ``name``."""
    if "." in name:
        block, idx = name.split(".")
        mod = net._modules[block]
        mod = mod[int(idx)] if idx.isnumeric() else mod._modules[idx]
    else:
        mod = net._modules[name]
    # A Sequential is hooked on its last child, as the official code does.
    return mod[-1] if isinstance(mod, torch.nn.Sequential) else mod


class OfficialReference:
    """``PatchCore.load`` + ``fit`` / ``predict`` of the official code, re-written here.

    Args:
        net: a FULL network as the official code builds it (train mode, as torchvision
            and timm construct models), with the weights already loaded.
        warmup: False reproduces a re-implementation that skips the warm-up (only for
            showing what the warm-up changes).
    """

    def __init__(self, net: torch.nn.Module, layers: Sequence[str], crop: int, pretrain_dim: int = 1024,
                 target_dim: int = 1024, patchsize: int = 3, k: int = 1, warmup: bool = True) -> None:
        self.net, self.layers, self.crop = net, list(layers), crop
        self.pre, self.target, self.p, self.k = pretrain_dim, target_dim, patchsize, k
        self.outputs: dict[str, torch.Tensor] = {}
        last = self.layers[-1]

        def make_hook(name: str):  # type: ignore[no-untyped-def]
            def hook(module, inputs, output):  # type: ignore[no-untyped-def]
                self.outputs[name] = output
                if name == last:
                    raise _StopForward

            return hook

        for name in self.layers:
            _layer_module(net, name).register_forward_hook(make_hook(name))
        if warmup:
            # feature_dimensions(input_shape): raw ones, in whatever mode the network is
            # (train, as built), under no_grad.
            self._forward(torch.ones(1, 3, crop, crop))
        self.index: faiss.IndexFlatL2 | None = None

    def _forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        self.outputs.clear()
        with torch.no_grad(), contextlib.suppress(_StopForward):
            self.net(images)
        return [self.outputs[name] for name in self.layers]

    def embed(self, images: torch.Tensor) -> tuple[np.ndarray, tuple[int, int]]:
        """``PatchCore._embed``: (B * h0 * w0, target) float32 and the patch grid."""
        self.net.eval()
        feats = self._forward(images.float())
        pad = (self.p - 1) // 2
        patched, shapes = [], []
        for f in feats:
            unf = torch.nn.Unfold(kernel_size=self.p, stride=1, padding=pad, dilation=1)(f)
            n = [int((s + 2 * pad - (self.p - 1) - 1) / 1 + 1) for s in f.shape[-2:]]
            unf = unf.reshape(*f.shape[:2], self.p, self.p, -1).permute(0, 4, 1, 2, 3)
            patched.append(unf)
            shapes.append(n)
        ref = shapes[0]
        for i in range(1, len(patched)):
            x = patched[i].reshape(patched[i].shape[0], shapes[i][0], shapes[i][1], *patched[i].shape[2:])
            x = x.permute(0, -3, -2, -1, 1, 2)
            base = x.shape
            x = x.reshape(-1, *x.shape[-2:])
            x = F.interpolate(x.unsqueeze(1), size=(ref[0], ref[1]), mode="bilinear", align_corners=False)
            x = x.squeeze(1).reshape(*base[:-2], ref[0], ref[1])
            x = x.permute(0, -2, -1, 1, 2, 3)
            patched[i] = x.reshape(len(x), -1, *x.shape[-3:])
        flat = [x.reshape(-1, *x.shape[-3:]) for x in patched]
        pre = [F.adaptive_avg_pool1d(x.reshape(len(x), 1, -1), self.pre).squeeze(1) for x in flat]
        stacked = torch.stack(pre, dim=1)
        out = F.adaptive_avg_pool1d(stacked.reshape(len(stacked), 1, -1), self.target).reshape(len(stacked), -1)
        return out.numpy().astype(np.float32), (ref[0], ref[1])

    def fit(self, images: torch.Tensor, coreset: float = 1.0, seed: int = 0, batch: int = 2) -> np.ndarray:
        """``_fill_memory_bank`` with the identity or the approximate greedy sampler; returns the bank."""
        feats = np.concatenate([self.embed(images[i:i + batch])[0] for i in range(0, len(images), batch)])
        bank = feats if coreset >= 1.0 else approximate_greedy_coreset(feats, coreset, seed)
        self.index = faiss.IndexFlatL2(bank.shape[1])
        self.index.add(bank)
        return bank

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``PatchCore._predict``: image scores (B,) and maps (B, crop, crop)."""
        assert self.index is not None
        feats, grid = self.embed(images)
        dist, _ = self.index.search(feats, self.k)
        patch = np.mean(dist, axis=-1).reshape(len(images), -1)
        scores = patch.max(axis=1)
        grids = torch.from_numpy(patch.reshape(len(images), *grid)).unsqueeze(1)
        up = F.interpolate(grids, size=(self.crop, self.crop), mode="bilinear", align_corners=False).squeeze(1)
        maps = np.stack([ndimage.gaussian_filter(m, sigma=4) for m in up.numpy()])
        return scores, maps


def approximate_greedy_coreset(features: np.ndarray, percentage: float, seed: int) -> np.ndarray:
    """``ApproximateGreedyCoresetSampler.run``: rows of ``features`` in selection order."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    x = torch.from_numpy(features)
    mapper = torch.nn.Linear(x.shape[1], 128, bias=False)
    with torch.no_grad():
        red = mapper(x) if x.shape[1] != 128 else x

        def dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            aa = a.unsqueeze(1).bmm(a.unsqueeze(2)).reshape(-1, 1)
            bb = b.unsqueeze(1).bmm(b.unsqueeze(2)).reshape(1, -1)
            return (-2 * a.mm(b.T) + aa + bb).clamp(0, None).sqrt()

        starts = np.random.choice(len(red), min(10, len(red)), replace=False).tolist()
        anchor = torch.mean(dists(red, red[starts]), axis=-1).reshape(-1, 1)
        picks = []
        for _ in range(int(len(red) * percentage)):
            idx = int(torch.argmax(anchor).item())
            picks.append(idx)
            anchor = torch.min(torch.cat([anchor, dists(red, red[idx:idx + 1])], dim=-1), dim=1).values.reshape(-1, 1)
    return features[np.array(picks)]


def save_official_folder(folder: Path, bank: np.ndarray, backbone_name: str, layers: Sequence[str], crop: int,
                         pretrain_dim: int = 1024, target_dim: int = 1024, patchsize: int = 3, k: int = 1) -> Path:
    """Write a model folder the way ``PatchCore.save_to_path`` does (pickle + faiss index)."""
    folder.mkdir(parents=True, exist_ok=True)
    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(np.ascontiguousarray(bank, dtype=np.float32))
    faiss.write_index(index, str(folder / "nnscorer_search_index.faiss"))
    params = {
        "backbone.name": backbone_name,
        "layers_to_extract_from": list(layers),
        "input_shape": (3, crop, crop),
        "pretrain_embed_dimension": pretrain_dim,
        "target_embed_dimension": target_dim,
        "patchsize": patchsize,
        "patchstride": 1,
        "anomaly_scorer_num_nn": k,
    }
    with open(folder / "patchcore_params.pkl", "wb") as fh:
        pickle.dump(params, fh, pickle.HIGHEST_PROTOCOL)
    return folder
