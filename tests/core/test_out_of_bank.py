"""Calibration from every training image: each scored as prediction would, without its own rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.core.engine import TrainConfig, train_model
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.out_of_bank import masked_knn


def test_masked_knn_is_the_search_over_the_rows_left() -> None:
    g = torch.Generator().manual_seed(3)
    bank, q = torch.randn(300, 24, generator=g), torch.randn(40, 24, generator=g)
    excluded = torch.zeros(300, dtype=torch.bool)
    excluded[::3] = True
    d, i = masked_knn(q, bank, 4, excluded, block=64)  # several blocks, merged
    keep = torch.nonzero(~excluded).squeeze(1)
    full = ((q[:, None, :].double() - bank[keep][None].double()) ** 2).sum(-1)
    want_d, want_j = torch.topk(full, 4, dim=1, largest=False)
    assert torch.equal(i, keep[want_j])
    torch.testing.assert_close(d.double(), want_d, rtol=1e-5, atol=1e-5)
    assert not excluded[i].any()
    with pytest.raises(ValueError, match="no bank row is left"):
        masked_knn(q, bank[:3], 1, torch.ones(3, dtype=torch.bool))


@pytest.fixture(scope="module")
def reweighted(image_dirs: dict[str, Path]) -> tuple[PatchCoreModel, list[Path]]:
    paths = sorted(image_dirs["train"].glob("*.png"))[:8]
    cfg = TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.25, k=2, reweight=3)
    return train_model(paths, cfg, device="cpu", batch_size=4), paths


def test_each_calibration_score_is_predictions_score_without_the_images_rows(reweighted) -> None:  # type: ignore[no-untyped-def]
    model, paths = reweighted
    cal = model.metadata["calibration"]
    assert cal["method"] == "out-of-bank" and cal["images"] == 8 and len(cal["map_maxima_values"]) == 8
    owner = model.bank_source[:, 0]
    assert len(set(owner.tolist())) > 1
    for i in (0, 3, 7):
        # The definition: a model whose bank is the final bank less image i's rows, scoring image i
        # through the ordinary prediction path (k-NN mean, max, Eq. 7 with its own search, map).
        keep = torch.from_numpy(np.flatnonzero(owner != i))
        other = PatchCoreModel(model.config, model.extractor, model.bank[keep], device="cpu")
        img = model.preprocess(Image.open(paths[i]).convert("RGB"))[None]
        score, grid = other.score_tensor(img)
        assert model.calibration_scores[i] == pytest.approx(float(score[0]), rel=1e-6)
        assert cal["map_maxima_values"][i] == pytest.approx(float(other.anomaly_maps(grid).max()), rel=1e-6)
    # Against the full bank (own rows in) the scores are lower: the masking matters.
    full, _ = model.score_tensor(torch.stack([model.preprocess(Image.open(p).convert("RGB")) for p in paths]))
    assert np.median(full) < 0.9 * np.median(model.calibration_scores)


def test_thresholds_follow_the_rate_and_say_so(reweighted) -> None:  # type: ignore[no-untyped-def]
    from patchcore_gui.core.calibration import threshold_for_rate

    model, _ = reweighted
    th = model.threshold_info
    assert th["false_reject_rate"] == 0.01 and th["count"] == 8 and th["source"] == "calibration"
    assert model.image_threshold == threshold_for_rate(model.calibration_scores, 0.01)
    assert model.pixel_threshold == threshold_for_rate(model.metadata["calibration"]["map_maxima_values"], 0.01)
    assert th["rule"].startswith("image: 1 % false rejects estimated from 8 out-of-bank scores")
    assert np.isnan(model.review_from)


def test_one_training_image_gives_an_uncalibrated_model_that_says_why(image_dirs: dict[str, Path]) -> None:
    path = sorted(image_dirs["train"].glob("*.png"))[0]
    m = train_model([path], TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5),
                    device="cpu")
    assert np.isnan(m.image_threshold) and m.calibration_scores.size == 0
    assert "one training image" in m.threshold_info["rule"]


def test_bad_false_reject_rate_is_refused() -> None:
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="--false-reject must lie strictly between 0 and 1"):
            train_model(["x.png"], TrainConfig(backbone="efficientnet_lite0", false_reject=bad), device="cpu")


def test_holdout_is_retired_with_a_note_and_zero_still_turns_calibration_off(
        image_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from patchcore_gui.cli import main

    folder = tmp_path / "good"
    folder.mkdir()
    for p in sorted(image_dirs["train"].glob("*.png"))[:3]:
        shutil.copy(p, folder / p.name)
    tiny = ["--backbone", "efficientnet_lite0", "--resize", "72", "--crop", "64", "--coreset", "0.5", "--quiet"]
    assert main(["train", "--images", str(folder), "--output", str(tmp_path / "a.patchcore"), *tiny,
                 "--holdout", "0.3"]) == 0
    out, err = capsys.readouterr()
    assert "note: --holdout is retired" in err
    assert "thresholds: image: 1 % false rejects estimated from 3 out-of-bank scores" in out
    assert PatchCoreModel.load(tmp_path / "a.patchcore", device="cpu").calibration_scores.size == 3
    assert main(["train", "--images", str(folder), "--output", str(tmp_path / "b.patchcore"), *tiny,
                 "--holdout", "0"]) == 0
    assert "retired" not in capsys.readouterr().err
    b = PatchCoreModel.load(tmp_path / "b.patchcore", device="cpu")
    assert np.isnan(b.image_threshold) and b.metadata["calibration"]["method"] == "none"
    with pytest.raises(SystemExit) as ei:  # argparse's usage error, exit 2
        main(["train", "--images", str(folder), "--output", str(tmp_path / "c.patchcore"), *tiny, "--false-reject", "1"])
    assert ei.value.code == 2 and "must lie strictly between 0 and 1, got 1" in capsys.readouterr().err
    assert not (tmp_path / "c.patchcore").exists()
