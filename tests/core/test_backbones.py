"""Backbones: truncation, offline weights, the EfficientNet-Lite0 key mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from patchcore_gui.core.backbones import (
    WeightsUnavailableError,
    build_extractor,
    packaged_weights_path,
)


def test_resnet_truncated_after_last_layer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    wfile = tmp_path / "r18.pth"
    torch.save(net.state_dict(), wfile)
    ext = build_extractor("resnet18", ["layer2", "layer3"], wfile)
    assert not hasattr(ext, "layer4") and not hasattr(ext, "fc")
    assert not any(k.startswith(("layer4", "fc")) for k in ext.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = ext(x)
        # Same as the full network's intermediate outputs.
        h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        l2 = net.layer2(net.layer1(h))
        l3 = net.layer3(l2)
    assert torch.allclose(out["layer2"], l2) and torch.allclose(out["layer3"], l3)
    assert ext.channels() == [128, 256]


def test_missing_weights_is_one_line_with_instructions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as ei:
        build_extractor("wide_resnet50_2")
    msg = str(ei.value)
    assert "--weights" in msg and "wide_resnet50_2-95faca4d.pth" in msg and "\n" not in msg


def test_hub_cache_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(3)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    ext = build_extractor("resnet18")
    assert torch.equal(ext.state_dict()["conv1.weight"], sd["conv1.weight"])


def test_wrong_weights_file_is_rejected(tmp_path: Path) -> None:
    wfile = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), wfile)
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        build_extractor("resnet50", None, wfile)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    with pytest.raises(WeightsUnavailableError, match="cannot read"):
        build_extractor("resnet18", None, junk)


def test_efficientnet_lite0_packaged_weights_match_timm_features() -> None:
    """The shipped ImageNet weights, renamed, give timm's tf_efficientnet_lite0 features."""
    import timm

    p = packaged_weights_path("efficientnet_lite0")
    assert p is not None and p.is_file()
    ext = build_extractor("efficientnet_lite0")
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3)).eval()
    sd = {k: v for k, v in ext.state_dict().items()}
    missing = ref.load_state_dict(sd, strict=False)
    # Every parameter up to blocks.4 came from our renamed weights (timm keeps blocks 5-6).
    assert not [k for k in missing.missing_keys if not k.startswith(("blocks.5", "blocks.6"))]
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        ours = ext(x)
        theirs = ref(x)
    assert ours["blocks.2"].shape[1] == 40 and ours["blocks.4"].shape[1] == 112
    assert torch.allclose(ours["blocks.2"], theirs[0], atol=1e-5)
    assert torch.allclose(ours["blocks.4"], theirs[1], atol=1e-5)
    # Real ImageNet weights, not an initialisation: BN running stats were learned.
    assert not torch.allclose(sd["bn1.running_var"], torch.ones_like(sd["bn1.running_var"]))
