"""Numerical parity with the reference PatchCore computation (docs/patchcore-spec.md section 1-4).

Every check compares the engine with an independent computation written in the tests:
explicit patch loops and the adaptive-pooling formula for features, a hand-written
bilinear upsample and ``scipy.ndimage.gaussian_filter`` for maps, and end to end the
official pipeline as its source does it (tests/official_reference.py: BatchNorm
warm-up, hooks, Unfold features, faiss search), sharing no code with the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms as T
from official_reference import OfficialReference, load_images, save_official_folder
from PIL import Image
from scipy import ndimage

from patchcore_gui.core.features import EmbeddingConfig, _embed_closed_form, _embed_general, embed
from patchcore_gui.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess

# ----------------------------------------------------------------------------- naive helpers


def adaptive_pool_1d(v: np.ndarray, out: int) -> np.ndarray:
    """PyTorch's adaptive_avg_pool1d by its definition: bin i = mean(v[floor(iL/o):ceil((i+1)L/o)])."""
    n = len(v)
    res = np.empty(out, dtype=np.float64)
    for i in range(out):
        a = (i * n) // out
        b = -((-(i + 1) * n) // out)
        res[i] = v[a:b].mean()
    return res


def bilinear_resize(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """align_corners=False bilinear resize of a 2-D array (half-pixel centres, edge clamp)."""
    h, w = img.shape
    out = np.empty((oh, ow), dtype=np.float64)
    for y in range(oh):
        sy = max((y + 0.5) * h / oh - 0.5, 0.0)
        y0 = min(int(math.floor(sy)), h - 1)
        y1 = min(y0 + 1, h - 1)
        fy = sy - y0
        for x in range(ow):
            sx = max((x + 0.5) * w / ow - 0.5, 0.0)
            x0 = min(int(math.floor(sx)), w - 1)
            x1 = min(x0 + 1, w - 1)
            fx = sx - x0
            out[y, x] = (
                img[y0, x0] * (1 - fy) * (1 - fx) + img[y0, x1] * (1 - fy) * fx
                + img[y1, x0] * fy * (1 - fx) + img[y1, x1] * fy * fx
            )
    return out


def naive_embedding(feats: list[np.ndarray], p: int, pre: int, target: int) -> np.ndarray:
    """The reference's features for ONE image, with explicit loops: (h0*w0, target)."""
    h0, w0 = feats[0].shape[1:]
    per_layer = []
    for f in feats:
        c, h, w = f.shape
        pad = (p - 1) // 2
        fp = np.pad(f.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
        # patches[c, py, px, y, x]
        patches = np.empty((c, p, p, h, w))
        for py in range(p):
            for px in range(p):
                patches[:, py, px] = fp[:, py : py + h, px : px + w]
        if (h, w) != (h0, w0):
            up = np.empty((c, p, p, h0, w0))
            for ci in range(c):
                for py in range(p):
                    for px in range(p):
                        up[ci, py, px] = bilinear_resize(patches[ci, py, px], h0, w0)
            patches = up
        rows = np.empty((h0 * w0, pre))
        for y in range(h0):
            for x in range(w0):
                rows[y * w0 + x] = adaptive_pool_1d(patches[:, :, :, y, x].reshape(-1), pre)
        per_layer.append(rows)
    stacked = np.stack(per_layer, axis=1).reshape(h0 * w0, -1)
    return np.stack([adaptive_pool_1d(r, target) for r in stacked])


# ----------------------------------------------------------------------------- features


def test_general_path_matches_naive_reference_layout() -> None:
    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(2, 4, 6, 6, generator=g)
    f2 = torch.randn(2, 6, 3, 3, generator=g)
    cfg = EmbeddingConfig(mode="reference", patch_size=3, pretrain_dim=10, target_dim=7)
    got, grid = embed([f1, f2], cfg)
    assert grid == (6, 6)
    assert got.shape == (2, 36, 7)
    for b in range(2):
        want = naive_embedding([f1[b].numpy(), f2[b].numpy()], 3, 10, 7)
        np.testing.assert_allclose(got[b].numpy(), want, rtol=1e-5, atol=1e-6)


def test_closed_form_matches_general_path_for_default_configuration() -> None:
    g = torch.Generator().manual_seed(1)
    f2 = torch.randn(2, 512, 28, 28, generator=g).relu()
    f3 = torch.randn(2, 1024, 14, 14, generator=g).relu()
    closed, grid_c = _embed_closed_form(f2, f3)
    general, grid_g = _embed_general([f2, f3], EmbeddingConfig())
    assert grid_c == grid_g == (28, 28)
    assert closed.shape == general.shape == (2, 784, 1024)
    err = (closed - general).abs().max().item() / general.abs().max().item()
    assert err < 5e-6, err


def test_default_configuration_dispatches_to_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    import patchcore_gui.core.features as F

    called = []
    monkeypatch.setattr(F, "_embed_general", lambda *a, **k: called.append(1))
    F.embed([torch.zeros(1, 512, 4, 4), torch.zeros(1, 1024, 2, 2)], EmbeddingConfig())
    assert not called


def test_native_embedding_is_pooled_concatenation() -> None:
    g = torch.Generator().manual_seed(2)
    f1 = torch.randn(1, 3, 8, 8, generator=g)
    f2 = torch.randn(1, 5, 4, 4, generator=g)
    got, grid = embed([f1, f2], EmbeddingConfig(mode="native"))
    assert grid == (8, 8) and got.shape == (1, 64, 8)
    # Location (3, 5): layer-1 part is the zero-padded 3x3 mean around it.
    fp = np.pad(f1[0].numpy(), ((0, 0), (1, 1), (1, 1)))
    want1 = fp[:, 3:6, 5:8].mean(axis=(1, 2))
    np.testing.assert_allclose(got[0, 3 * 8 + 5, :3].numpy(), want1, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("size", [(300, 257), (640, 480), (224, 224), (199, 403)])
def test_preprocess_equals_reference_transform(tmp_path, size) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    p = tmp_path / "x.png"
    Image.fromarray(arr).save(p)
    reference = T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    ])
    want = reference(Image.open(p).convert("RGB"))
    from patchcore_gui.io.images import load_image

    got = Preprocess()(load_image(p))
    assert torch.equal(got, want)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def wr50_random_weights(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Fixed-seed random WideResNet-50-2 weights as a state-dict file (no download)."""
    torch.manual_seed(0)
    net = torchvision.models.wide_resnet50_2(weights=None)
    path = tmp_path_factory.mktemp("w") / "wr50_seed0.pth"
    torch.save(net.state_dict(), path)
    return path


def _brick_images(tmp_path, n: int) -> list:  # type: ignore[no-untyped-def]
    from skimage import data

    brick = data.brick()
    out = []
    for i in range(n):
        y, x = 30 + 61 * i, 20 + 47 * i
        tile = brick[y : y + 230, x : x + 260]
        p = tmp_path / f"b{i}.png"
        Image.fromarray(tile).save(p)
        out.append(p)
    return out


def _official_wr50(weights_path, **kw):  # type: ignore[no-untyped-def]
    """The official pipeline on a fresh full WR50 holding the same weights (train mode, as built)."""
    net = torchvision.models.wide_resnet50_2(weights=None)
    net.load_state_dict(torch.load(weights_path, weights_only=True))
    return OfficialReference(net, ["layer2", "layer3"], 224, **kw)


def _assert_close_to_official(scores, maps, want_scores, want_maps, map_rtol: float = 1e-4) -> None:  # type: ignore[no-untyped-def]
    """Image scores within 1e-4 relative, maps within ``map_rtol`` of their maximum."""
    assert len(scores) == len(want_scores) > 0
    for i in range(len(want_scores)):
        assert abs(scores[i] - want_scores[i]) / want_scores[i] < 1e-4, (scores[i], want_scores[i])
        rel = np.abs(maps[i] - want_maps[i]).max() / np.abs(want_maps[i]).max()
        assert rel < map_rtol, rel


def test_scores_and_maps_match_the_official_computation_wr50(tmp_path, wr50_random_weights) -> None:  # type: ignore[no-untyped-def]
    """Default configuration, 100 % bank: scores and maps within 1e-4 relative of the
    official pipeline re-created in tests/official_reference.py (BatchNorm warm-up,
    hooks, Unfold features, faiss search), which shares no code with the engine."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    paths = _brick_images(tmp_path, 4)
    model = train_model(paths[:2], TrainConfig(coreset=1.0, holdout=0.0), weights=wr50_random_weights,
                        device="cpu", batch_size=2)
    assert model.bank_size == 2 * 784 and model.feature_dim == 1024
    scores, maps = model.predict([str(p) for p in paths[2:]])

    ref = _official_wr50(wr50_random_weights)
    ref.fit(load_images(paths[:2], 256, 224))
    want_scores, want_maps = ref.predict(load_images(paths[2:], 256, 224))
    _assert_close_to_official(scores, maps, want_scores, want_maps)
    # The comparison can tell: without the warm-up the official numbers are far away.
    cold = _official_wr50(wr50_random_weights, warmup=False)
    cold.fit(load_images(paths[:2], 256, 224))
    cold_scores, _ = cold.predict(load_images(paths[2:], 256, 224))
    assert np.abs(np.asarray(scores) / cold_scores - 1).max() > 0.1
    # A training image scores (near) zero against a 100 % bank of itself.
    s_train, _ = model.predict([str(paths[0])])
    assert s_train[0] < 1e-3 * scores[0]


@pytest.mark.parametrize(("coreset", "k"), [(1.0, 1), (0.25, 3)])
def test_imported_official_model_scores_like_the_official_predict(tmp_path, wr50_random_weights, coreset,  # type: ignore[no-untyped-def]
                                                                  k) -> None:
    """A folder written the way the official save_to_path writes it (identity or
    approximate-greedy bank, 1 or 3 neighbours), imported, scores real photographs as the
    official predict does: images within 1e-4 relative, maps within 1e-3."""
    from patchcore_gui.core.official_import import import_official

    paths = _brick_images(tmp_path, 4)
    ref = _official_wr50(wr50_random_weights, k=k)
    bank = ref.fit(load_images(paths[:2], 256, 224), coreset=coreset)
    assert len(bank) == int(2 * 784 * coreset)
    folder = save_official_folder(tmp_path / "official", bank, "wideresnet50", ["layer2", "layer3"], 224, k=k)
    model = import_official(folder, weights=wr50_random_weights, device="cpu")
    assert model.config.k == k and model.bank_size == len(bank)
    scores, maps = model.predict([str(p) for p in paths[2:]])
    want_scores, want_maps = ref.predict(load_images(paths[2:], 256, 224))
    _assert_close_to_official(scores, maps, want_scores, want_maps, map_rtol=1e-3)


@pytest.mark.parametrize("shape", [(28, 28), (28, 20), (7, 7)])
def test_gpu_map_operator_equals_reference_maps(shape: tuple[int, int]) -> None:
    """The matrix form used on CUDA (M @ grid @ M.T) gives the reference's maps: hand-
    written bilinear resize then scipy's Gaussian (sigma 4, reflect), in float64."""
    from patchcore_gui.core.maps import anomaly_maps, anomaly_maps_torch

    rng = np.random.default_rng(sum(shape))
    grids = rng.gamma(2.0, 3.0, (3, *shape)).astype(np.float32)
    got = anomaly_maps_torch(torch.from_numpy(grids), 224).numpy()
    for g, m in zip(grids, got, strict=True):
        want = ndimage.gaussian_filter(bilinear_resize(g.astype(np.float64), 224, 224), sigma=4)
        np.testing.assert_allclose(m, want, rtol=1e-5, atol=1e-6 * want.max())
    if shape[0] == shape[1]:
        np.testing.assert_allclose(got, anomaly_maps(grids, 224), rtol=1e-5, atol=1e-6 * got.max())
