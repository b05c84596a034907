"""Batch-norm folding for the fast path: same features, original backbone untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from patchcore_gui.core.backbones import FeatureExtractor
from patchcore_gui.core.bn_fold import fold_batchnorm
from patchcore_gui.core.model import ModelConfig, PatchCoreModel


def _resnet18(seed: int = 0) -> FeatureExtractor:
    """resnet18 to layer3 with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    ext = FeatureExtractor("resnet18", ["layer2", "layer3"])
    g = torch.Generator().manual_seed(seed)
    for m in ext.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g) * 1.5)
            m.weight.data.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(c, generator=g))
    return ext.eval()


def _bn_count(m: nn.Module) -> int:
    return sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())


def test_folding_removes_every_batch_norm_and_keeps_the_features() -> None:
    ext = _resnet18()
    before = {k: v.clone() for k, v in ext.state_dict().items()}
    folded = fold_batchnorm(ext)
    assert folded is not None
    assert _bn_count(ext) > 10 and _bn_count(folded) == 0
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ext(x), folded(x)
    assert want.keys() == got.keys() == {"layer2", "layer3"}
    for k in want:
        assert want[k].shape == got[k].shape
        rel = float((want[k] - got[k]).abs().max() / want[k].abs().max())
        assert 0 < rel < 1e-5  # rounds differently, agrees to float precision
    # The original is untouched: its weights are what a saved model holds.
    after = ext.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_untraceable_modules_fold_child_by_child_and_a_wrong_guess_is_rejected() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            return y if float(y.mean()) > 0 else -y  # data-dependent: fx cannot trace it

    class BnFirst(Branchy):
        """Registered conv, bn, but run bn -> conv: adjacency is not data flow here."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(self.bn(x))
            return y if float(y.mean()) > 0 else -y

    def randomised(m: nn.Module) -> nn.Module:
        g = torch.Generator().manual_seed(3)
        for bn in (mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g))
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.data.copy_(torch.randn(n, generator=g))
            bn.bias.data.copy_(torch.randn(n, generator=g))
        return m.eval()

    branchy = randomised(Branchy())
    folded = fold_batchnorm(branchy)
    assert folded is not None and _bn_count(folded) == 0
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), branchy(x), rtol=1e-5, atol=1e-5)
    # Folding the bn into the conv that runs *after* it changes the output: rejected.
    assert fold_batchnorm(randomised(BnFirst()), probe_size=16) is None
    assert fold_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())) is None


def test_timm_efficientnet_folds_keeping_the_activation_its_batch_norms_carry() -> None:
    torch.manual_seed(5)
    ext = FeatureExtractor("efficientnet_lite0", ["blocks.2", "blocks.4"]).eval()
    for bn in (m for m in ext.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(ext)
    assert folded is not None and _bn_count(ext) > 10 and _bn_count(folded) == 0
    # ReLU6 inside timm's BatchNormAct2d survives the fold (as a module of its own).
    assert sum(isinstance(m, nn.ReLU6) for m in folded.modules()) == sum(
        isinstance(m, nn.ReLU6) for m in ext.modules())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        want, got = ext(x), folded(x)
    for k in want:
        rel = float((want[k] - got[k]).abs().max() / want[k].abs().max())
        assert 0 <= rel < 1e-5


def test_fast_path_uses_the_folded_backbone_and_saves_the_original(tmp_path: Path) -> None:
    ext = _resnet18()
    cfg = ModelConfig(backbone="resnet18", resize=72, crop=64)
    g = torch.Generator().manual_seed(2)
    images = torch.randn(3, 3, 64, 64, generator=g)
    shell = PatchCoreModel(cfg, ext, torch.randn(8, 384), device="cpu")
    feats, _ = shell.embed(torch.randn(6, 3, 64, 64, generator=g))
    bank = feats.reshape(-1, feats.shape[-1])
    exact = PatchCoreModel(cfg, ext, bank, {}, device="cpu", precision="fp32")
    s_exact, _ = exact.score_tensor(images)
    fast = PatchCoreModel(cfg, _resnet18(), bank, {}, device="cpu", precision="bf16")
    assert fast._fast_extractor is not None and _bn_count(fast._fast_extractor) == 0
    assert _bn_count(fast.extractor) == _bn_count(ext)
    s_fast, _ = fast.score_tensor(images)
    np.testing.assert_allclose(s_fast, s_exact, rtol=1e-4)
    # Saved from the fast path, loaded on the exact path: the original weights, same scores.
    path = tmp_path / "r18.patchcore"
    fast.save(path)
    again = PatchCoreModel.load(path, device="cpu", precision="fp32")
    np.testing.assert_array_equal(again.score_tensor(images)[0], s_exact)
    # Back to the exact path: no folded copy kept.
    fast.set_precision("fp32")
    assert fast._fast_extractor is None
    np.testing.assert_array_equal(fast.score_tensor(images)[0], s_exact)


@pytest.mark.parametrize("probe", [32, 64])
def test_a_fold_that_changes_the_output_is_rejected(monkeypatch: pytest.MonkeyPatch, probe: int) -> None:
    import torch.fx.experimental.optimization as opt

    real = opt.fuse

    def bad_fuse(model: nn.Module, *a: object, **k: object) -> nn.Module:
        out = real(model, *a, **k)
        for m in out.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.data.add_(1.0)  # a wrong fold
                break
        return out

    monkeypatch.setattr(opt, "fuse", bad_fuse)
    assert fold_batchnorm(_resnet18(), probe_size=probe) is None


def test_half_precision_backbone_is_float16_on_cuda_and_float32_on_cpu() -> None:
    from patchcore_gui.core.model import half_backbone_dtype

    assert half_backbone_dtype(torch.device("cuda", 0)) is torch.float16
    assert half_backbone_dtype(torch.device("cpu")) is None
    cfg = ModelConfig(backbone="resnet18", resize=72, crop=64)
    m = PatchCoreModel(cfg, _resnet18(), torch.randn(16, 384), {}, device="cpu", precision="bf16")
    assert m._half_dtype is None  # the CPU's fast path keeps a float32 backbone
    assert PatchCoreModel(cfg, _resnet18(), torch.randn(16, 384), {}, device="cpu")._half_dtype is None


def test_a_float16_overflow_is_computed_again_in_float32() -> None:
    """Features beyond float16's range (65,504) must not come back as inf."""
    cfg = ModelConfig(backbone="resnet18", resize=72, crop=64)
    bank = torch.randn(16, 384)
    exact = PatchCoreModel(cfg, _resnet18(), bank, {}, device="cpu", precision="fp32")
    fast = PatchCoreModel(cfg, _resnet18(), bank, {}, device="cpu", precision="bf16")
    fast._half_dtype = torch.float16  # as on CUDA
    g = torch.Generator().manual_seed(4)
    calm = torch.randn(2, 3, 64, 64, generator=g)
    wild = calm * 1e6  # activations far beyond float16's range
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        raw = fast._fast_extractor(wild.contiguous(memory_format=torch.channels_last))
    assert not all(bool(torch.isfinite(v).all()) for v in raw.values())  # it does overflow
    got, _ = fast.embed(wild)
    want, _ = exact.embed(wild)
    assert bool(torch.isfinite(got).all())
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    # In range, float16 is used: close to float32, not identical.
    h, _ = fast.embed(calm)
    f, _ = exact.embed(calm)
    assert not torch.equal(h, f)
    torch.testing.assert_close(h, f, rtol=0, atol=2e-2 * float(f.abs().max()))
