"""``train --crop none``: the whole image, resized to resize x resize, is inspected (issue 13 point 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms.functional as TF
from PIL import Image
from tests_helpers import textured, with_defect

from patchcore_gui.core import heatmap
from patchcore_gui.core.model import ModelConfig, PatchCoreModel
from patchcore_gui.core.preprocess import Preprocess
from patchcore_gui.core.train_config import TrainConfig, resolve_crop

#: A defect at the left edge of a 96 x 104 image: the centre crop of resize 72 / crop 64
#: starts 7 resized px (9.3 original px) in, so it never sees columns 0..8.
EDGE = (40, 0, 8)


def _edge_defect(rng: np.random.Generator) -> np.ndarray:
    y, x, s = EDGE
    return with_defect(textured(rng), y, x, s)


def test_preprocess_resizes_the_whole_image_without_keeping_the_aspect() -> None:
    img = np.full((60, 100, 3), 100, np.uint8)
    img[:, :4] = (250, 0, 0)  # a red band at the left edge
    pil = Image.fromarray(img)
    whole = Preprocess(64, 64, crop_mode="none")
    out = whole.pil(pil)
    assert out.size == (64, 64)
    assert np.array_equal(np.asarray(out), np.asarray(TF.resize(pil, [64, 64], interpolation=TF.InterpolationMode.BILINEAR)))
    assert np.asarray(out)[:, 0, 0].min() > 200  # the edge is in
    assert tuple(whole(pil).shape) == (3, 64, 64)
    centre = Preprocess(72, 64)
    assert np.asarray(centre.pil(pil))[:, 0, 0].max() < 150  # the centre crop cut it off
    mask = Image.fromarray(np.where(img[..., 0] > 200, 255, 0).astype(np.uint8))
    assert whole.mask(mask)[0, :, 0].all() and not whole.mask(mask)[0, :, 10:].any()


def test_to_original_covers_the_whole_image() -> None:
    whole = Preprocess(64, 64, crop_mode="none")
    amap = np.zeros((64, 64), np.float32)
    amap[:8, :8] = 5.0  # hot top-left corner
    back = whole.to_original(amap, 104, 96)
    assert back.shape == (96, 104) and np.isfinite(back).all()
    assert back[0, 0] == 5.0 and back[-1, -1] == 0.0
    assert np.isfinite(whole.to_original(amap, 104, 96, 26, 24)).all()  # thumbnails too
    # The centre crop leaves a NaN border where the model never looked.
    assert np.isnan(Preprocess(72, 64).to_original(amap, 104, 96)[:, :5]).all()
    assert whole.layout(104, 96) == (64, 64, 0, 0)


def test_impossible_crop_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="resize must equal it"):
        Preprocess(256, 224, crop_mode="none")
    with pytest.raises(ValueError, match="crop mode must be one of center, none"):
        Preprocess(256, 224, crop_mode="edge")
    assert resolve_crop(TrainConfig(resize=96, crop=224, crop_mode="none")).crop == 96
    with pytest.raises(ValueError, match="--crop none needs --resize 32 or more"):
        resolve_crop(TrainConfig(resize=0, crop_mode="none"))


def test_old_files_without_a_crop_mode_read_as_centre_crop() -> None:
    d = ModelConfig(resize=72, crop=64).to_json()
    assert d["crop_mode"] == "center"
    del d["crop_mode"]
    assert ModelConfig.from_json(d).crop_mode == "center"
    assert ModelConfig.from_json({**d, "crop_mode": "none", "resize": 64}).preprocess.whole


def test_the_coverage_note_says_what_the_crop_leaves_out() -> None:
    assert Preprocess(256, 224).coverage_note() == (
        "centre crop 224 of 256: the outer 6.25 % at each edge (23 % of a square image's area, "
        "more of an oblong one) is not inspected")
    assert Preprocess(256, 256, crop_mode="none").coverage_note().startswith("whole image resized to 256 x 256")


@pytest.fixture(scope="module")
def whole_model(image_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained with ``patchcore train --crop none --resize 64``."""
    from patchcore_gui.cli import main

    out = tmp_path_factory.mktemp("whole") / "whole.patchcore"
    assert main(["train", "--images", str(image_dirs["train"]), "--output", str(out), "--backbone", "efficientnet_lite0",
                 "--resize", "64", "--crop", "none", "--coreset", "0.5", "--quiet",
                 "--device", "cpu"]) == 0
    return out


def test_trained_model_records_the_mode_and_round_trips(whole_model: Path, tmp_path: Path) -> None:
    m = PatchCoreModel.load(whole_model, device="cpu")
    assert m.config.crop_mode == "none" and m.config.crop == 64 and m.config.resize == 64
    assert m.metadata["crop_mode"] == "none"
    assert m.summary()["crop_mode"] == "none"
    img = textured(np.random.default_rng(5))
    s1, maps = m.predict([img])
    assert maps[0].shape == (64, 64)
    m.save(tmp_path / "again.patchcore")
    again = PatchCoreModel.load(tmp_path / "again.patchcore", device="cpu")
    assert again.config == m.config
    assert again.predict([img])[0] == s1


def test_info_says_the_crop_mode(whole_model: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.cli import main

    assert main(["info", str(whole_model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["crop_mode"] == "none"
    assert info["crop_summary"] == "whole image resized to 64 x 64 (no centre crop; aspect not kept)"
    assert main(["info", str(tiny_model_path)]) == 0
    assert json.loads(capsys.readouterr().out)["crop_summary"].startswith("centre crop 64 of 72: the outer 5.56 %")


def test_an_edge_defect_is_found_and_its_overlay_covers_the_whole_image(whole_model: Path, tiny_model_path: Path) -> None:
    whole = PatchCoreModel.load(whole_model, device="cpu")
    centre = PatchCoreModel.load(tiny_model_path, device="cpu")
    rng = np.random.default_rng(11)
    bad, good = _edge_defect(rng), textured(rng)
    h, w = bad.shape[:2]
    y, x, s = EDGE
    for model, sees_edge in ((whole, True), (centre, False)):
        _, (amap,) = model.predict([bad])
        back = model.map_to_original(amap, w, h)
        rgba = heatmap.colorize(back, model.pixel_threshold)
        if sees_edge:
            assert np.isfinite(back).all() and (rgba[..., 3] == 255).all()  # no uncovered border
            peak = np.unravel_index(np.argmax(back), back.shape)
            assert abs(peak[0] - (y + s / 2)) <= 12 and peak[1] <= x + s + 12
        else:
            assert np.isnan(back[:, :9]).all() and (rgba[:, :9, 3] == 0).all()
    scores, _ = whole.predict([bad, good])
    assert scores[0] > 1.5 * scores[1]  # the centre crop would have passed it: nothing to see there
