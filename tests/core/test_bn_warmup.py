"""The official BatchNorm warm-up (docs/patchcore-spec.md section 1a), its option and old files.

The references here are built the official way, not with the project's helper: a full
torchvision / timm network, still in train mode as constructed, a forward hook on the
last requested layer that raises to stop the forward, one ``torch.ones`` input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from official_reference import OfficialReference

from patchcore_gui.core.backbones import FeatureExtractor, build_extractor, official_bn_warmup
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError, read_model_file

DATA = Path(__file__).resolve().parents[1] / "data"


def _bn_buffers(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {
        f"{prefix}{name}.{b}": getattr(m, b).detach().clone()
        for name, m in module.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for b in ("running_mean", "running_var", "num_batches_tracked")
    }


def _official_warmed(net: torch.nn.Module, layers: list[str], crop: int) -> dict[str, torch.Tensor]:
    """BN buffers of ``net`` after the official load(): hooks, train-mode forward of ones."""
    OfficialReference(net, layers, crop)
    return _bn_buffers(net)


@pytest.mark.parametrize(("layers", "reached", "untouched"), [
    (["layer2", "layer3"], ("bn1", "layer1", "layer2", "layer3"), ("layer4",)),
    (["layer1", "layer2"], ("bn1", "layer1", "layer2"), ("layer3", "layer4")),
])
def test_torchvision_warmup_equals_one_train_forward_of_ones(layers: list[str], reached: tuple[str, ...],
                                                              untouched: tuple[str, ...]) -> None:
    torch.manual_seed(3)
    full = torchvision.models.resnet18(weights=None)
    # Non-default statistics, so an update and its momentum are visible.
    with torch.no_grad():
        for m in full.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    sd = {k: v.clone() for k, v in full.state_dict().items()}
    before = _bn_buffers(full)

    ext = build_extractor("resnet18", layers, sd)
    official_bn_warmup(ext, 64)
    assert not ext.training
    want = _official_warmed(full, layers, 64)
    got = _bn_buffers(ext)
    assert got, "no BatchNorms found"
    for key, value in got.items():
        assert key.split(".")[0] in reached
        torch.testing.assert_close(value, want[key], rtol=1e-6, atol=1e-7, msg=key)
        if key.endswith("num_batches_tracked"):
            assert int(value) == 1, key
        else:
            assert not torch.equal(value, before[key]), f"{key} was not updated"
    # BatchNorms after the last requested layer keep their values in the official code.
    for key, value in want.items():
        if key.split(".")[0] in untouched:
            assert torch.equal(value, before[key]), key
            assert key not in got


def test_warmup_is_momentum_point_one_with_unbiased_variance() -> None:
    """The stem BatchNorm by hand: 0.9 old + 0.1 batch mean / unbiased batch variance."""
    torch.manual_seed(4)
    full = torchvision.models.resnet18(weights=None)
    ext = build_extractor("resnet18", ["layer1"], full.state_dict())
    old_mean, old_var = ext.bn1.running_mean.clone(), ext.bn1.running_var.clone()
    with torch.no_grad():
        z = full.conv1(torch.ones(1, 3, 48, 48)).double()  # the stem BN's input
    n = z.shape[2] * z.shape[3]
    mean = z.mean(dim=(0, 2, 3))
    var = ((z - mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3)) / (n - 1)
    official_bn_warmup(ext, 48)
    torch.testing.assert_close(ext.bn1.running_mean.double(), 0.9 * old_mean.double() + 0.1 * mean,
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ext.bn1.running_var.double(), 0.9 * old_var.double() + 0.1 * var,
                               rtol=1e-5, atol=1e-6)


def test_timm_efficientnet_warmup_equals_official_hooked_forward() -> None:
    import timm

    torch.manual_seed(5)
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    sd = {k: v.clone() for k, v in full.state_dict().items()}
    before = _bn_buffers(full)
    ext = build_extractor("efficientnet_lite0", ["blocks.2", "blocks.4"], sd)
    official_bn_warmup(ext, 64)
    want = _official_warmed(full, ["blocks.2", "blocks.4"], 64)
    got = _bn_buffers(ext)
    for key, value in got.items():
        torch.testing.assert_close(value, want[key], rtol=1e-6, atol=1e-7, msg=key)
    assert int(got["blocks.4.2.bn3.num_batches_tracked"]) == 1
    # blocks.5, blocks.6 and the head's bn2 are never reached.
    for key in ("blocks.5.0.bn1.running_mean", "blocks.6.0.bn1.running_var", "bn2.running_mean"):
        assert torch.equal(want[key], before[key]), key


def test_training_applies_and_records_the_warmup(image_dirs: dict[str, Path], tmp_path: Path) -> None:
    from patchcore_gui.core.engine import TrainConfig, train_model

    torch.manual_seed(6)
    full = torchvision.models.resnet18(weights=None)
    sd = {k: v.clone() for k, v in full.state_dict().items()}
    paths = sorted(image_dirs["train"].glob("*.png"))[:3]
    cfg = dict(backbone="resnet18", resize=73, crop=64, coreset=1.0, holdout=0.0)
    warmed = train_model(paths, TrainConfig(**cfg), weights=sd, device="cpu")
    plain = train_model(paths, TrainConfig(**cfg, bn_warmup="none"), weights=sd, device="cpu")
    assert warmed.metadata["bn_warmup"] == "official" and plain.metadata["bn_warmup"] == "none"
    want = _official_warmed(full, ["layer2", "layer3"], 64)
    for key, value in _bn_buffers(warmed.extractor).items():
        torch.testing.assert_close(value, want[key], rtol=1e-6, atol=1e-7, msg=key)
    for key, value in _bn_buffers(plain.extractor).items():
        assert torch.equal(value, sd[key]), key
    # The file keeps the warmed buffers: loading needs no extra step and scores the same.
    warmed.save(tmp_path / "w.patchcore")
    loaded = PatchCoreModel.load(tmp_path / "w.patchcore", device="cpu")
    assert loaded.summary()["bn_warmup"].startswith("official")
    for key, value in _bn_buffers(loaded.extractor).items():
        assert torch.equal(value, _bn_buffers(warmed.extractor)[key]), key
    test = sorted(str(p) for p in image_dirs["test"].glob("*.png"))
    assert loaded.predict(test)[0] == warmed.predict(test)[0]
    # The option matters: without the warm-up the scores are others.
    s_plain = np.array(plain.predict(test)[0])
    s_warm = np.array(warmed.predict(test)[0])
    assert np.abs(s_plain / s_warm - 1).max() > 0.01


def test_bad_warmup_choice_is_refused(image_dirs: dict[str, Path]) -> None:
    from patchcore_gui.core.engine import TrainConfig, train_model

    with pytest.raises(ValueError, match="--bn-warmup must be one of official, none"):
        train_model(sorted(image_dirs["train"].glob("*.png")), TrainConfig(bn_warmup="twice"))


# ----------------------------------------------------------------------------- old files


def test_format1_file_scores_as_it_was_trained(tmp_path: Path) -> None:
    """A model made before the warm-up (format 1) keeps its scores and says it has no warm-up."""
    path = DATA / "legacy_v1.patchcore"
    expected = np.load(DATA / "legacy_v1_expected.npz")
    raw = json.loads(_raw_meta(path))
    assert raw["format_version"] == 1 and "bn_warmup" not in raw
    model = PatchCoreModel.load(path, device="cpu")
    text = model.summary()["bn_warmup"]
    assert text == "no BatchNorm warm-up (made before format 2 (PatchCore Inspector 0.1))"
    scores, maps = model.predict(list(expected["images"]))
    np.testing.assert_allclose(scores, expected["scores"], rtol=1e-6)
    np.testing.assert_allclose(np.stack(maps), expected["maps"], rtol=1e-5, atol=1e-6 * expected["maps"].max())
    # Saved again (e.g. after a threshold change): format 2, still explicitly unwarmed.
    model.with_threshold(float(expected["scores"].max())).save(tmp_path / "again.patchcore")
    again = json.loads(_raw_meta(tmp_path / "again.patchcore"))
    assert again["format_version"] == 2 and again["bn_warmup"] == "none"
    reloaded = PatchCoreModel.load(tmp_path / "again.patchcore", device="cpu")
    assert reloaded.summary()["bn_warmup"] == text
    np.testing.assert_allclose(reloaded.predict(list(expected["images"]))[0], expected["scores"], rtol=1e-6)


def test_info_and_model_card_name_the_warmup_state(tiny_model_path: Path) -> None:
    from patchcore_gui.qt.model_card import describe

    for path, fragment in ((DATA / "legacy_v1.patchcore", "no BatchNorm warm-up (made before format 2"),
                           (tiny_model_path, "official (one train-mode forward of ones")):
        out = subprocess.run([sys.executable, "-m", "patchcore_gui.cli", "info", str(path)],
                             capture_output=True, text=True, check=True).stdout
        assert fragment in json.loads(out)["bn_warmup_summary"]
        assert fragment in describe(PatchCoreModel.load(path, device="cpu").summary())["bn_warmup"]


def _raw_meta(path: Path) -> str:
    import struct

    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(fh.read(n))["__metadata__"]["patchcore_gui"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("bn_warmup"), "bn_warmup missing"),
    (lambda m: m.update(bn_warmup="twice"), "bn_warmup must be one of official, none"),
])
def test_format2_warmup_field_is_checked(tiny_model_path: Path, tmp_path: Path, change, message) -> None:  # type: ignore[no-untyped-def]
    from patchcore_gui.core.modelfile import save_model_file

    tensors, meta = read_model_file(tiny_model_path)
    change(meta)
    for key in ("format", "format_version", "tensor_sha256"):
        meta.pop(key, None)
    out = tmp_path / "bad.patchcore"
    save_model_file(out, tensors, meta)
    with pytest.raises(ModelFileError, match=message):
        PatchCoreModel.load(out, device="cpu")


def test_feature_extractor_is_left_in_eval_mode_even_on_error() -> None:
    ext = FeatureExtractor("resnet18", ["layer2"])
    with pytest.raises(RuntimeError):
        official_bn_warmup(ext, 0)
    assert not ext.training
