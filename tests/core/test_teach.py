"""Teach as good (issue 14 point 4): coverage extension, provenance, calibration, history, flips, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.cli import main
from patchcore_gui.core import training_pictures as tp
from patchcore_gui.core.datasets import scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.provenance import file_sha256
from patchcore_gui.core.teach import TeachError, extend_coverage, flips, teach


@pytest.fixture(scope="module")
def parent(tiny_model_path: Path) -> PatchCoreModel:
    return PatchCoreModel.load(tiny_model_path, device="cpu")


@pytest.fixture(scope="module")
def taught(parent: PatchCoreModel, image_dirs: dict[str, Path]) -> tuple[PatchCoreModel, object, list[Path]]:
    good = [image_dirs["test"] / "a_good_0.png", image_dirs["test"] / "a_good_1.png"]
    child, report = teach(parent, good, note="new variant", user="ana")
    return child, report, good


def _scores(model: PatchCoreModel, paths: list[Path]) -> np.ndarray:
    return np.array(model.predict([str(p) for p in paths])[0])


def test_extend_coverage_is_farthest_first_and_skips_known_rows() -> None:
    bank = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    new = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0], [0.0, 4.0], [10.0, 0.0]])
    # Distances to the bank: 0, 1, 25, 16, 0. Fraction 1: all but the two bank duplicates,
    # farthest first; after (0, 5) is added, (0, 4) is at 1 and ties with (1, 0): lowest index.
    assert extend_coverage(bank, new, 1.0).tolist() == [2, 1, 3]
    # Fraction 0.4 of 5 new patches = 2 picks.
    assert extend_coverage(bank, new, 0.4).tolist() == [2, 1]


def test_new_rows_and_provenance(parent: PatchCoreModel, taught: tuple) -> None:
    child, report, good = taught
    n_old = len(parent.training_files)
    added = child.bank_size - parent.bank_size
    assert added == report.rows_added > 0
    # Coreset fraction 0.5 of 2 x 64 new patches at most.
    assert added <= 64
    assert torch.equal(child.bank[: parent.bank_size], parent.bank)
    assert np.array_equal(child.bank_source[: parent.bank_size], parent.bank_source)
    src = child.bank_source[parent.bank_size:]
    assert set(src[:, 0].tolist()) <= {n_old, n_old + 1}
    # Each new row is the feature of its recorded image at its recorded patch.
    feats, _ = parent.embed(torch.stack([parent.preprocess(Image.open(p).convert("RGB")) for p in good]))
    for r, (img_i, patch_i) in zip(range(parent.bank_size, child.bank_size), src, strict=True):
        assert torch.allclose(child.bank[r], feats[img_i - n_old, patch_i], atol=1e-5)
    files = child.training_files
    assert len(files) == n_old + 2 and files[-1] == {"path": str(good[1]), "sha256": file_sha256(good[1])}
    assert child.metadata["training"]["image_count"] == n_old + 2


def test_history_pictures_and_calibration(parent: PatchCoreModel, taught: tuple, tiny_model_path: Path) -> None:
    child, report, good = taught
    hist = child.metadata["teach_history"][-1]
    assert hist["parent_sha256"] == file_sha256(tiny_model_path)
    assert hist["taught"] == [{"path": str(p), "sha256": file_sha256(p)} for p in good]
    assert hist["user"] == "ana" and hist["note"] == "new variant" and hist["time"]
    pics = tp.TrainingPictures.of(child)
    assert len(pics) == len(parent.training_files) + 2 and pics.get(len(pics) - 1) is not None
    # The taught images' out-of-bank scores join the calibration; the others' are kept.
    old = parent.calibration_scores
    assert np.array_equal(child.calibration_scores[: old.size], old)
    assert child.calibration_scores[old.size:].tolist() == [t.score_after for t in report.images]
    assert np.isfinite(child.image_threshold)


def test_thresholds_re_derived_at_the_rate_or_kept(parent: PatchCoreModel, taught: tuple,
                                                  image_dirs: dict[str, Path]) -> None:
    from patchcore_gui.core.calibration import threshold_for_rate

    child, _report, good = taught
    rate = parent.threshold_info["false_reject_rate"]
    assert child.image_threshold == threshold_for_rate(child.calibration_scores, rate)
    maxima = child.metadata["calibration"]["map_maxima_values"]
    assert len(maxima) == child.calibration_scores.size
    assert child.pixel_threshold == threshold_for_rate(maxima, rate)
    assert child.metadata["teach_history"][-1]["thresholds"] == "recalibrated"
    kept, _ = teach(parent, good, keep_thresholds=True)
    assert (kept.image_threshold, kept.pixel_threshold) == (parent.image_threshold, parent.pixel_threshold)
    assert np.array_equal(kept.calibration_scores, child.calibration_scores)
    assert kept.metadata["teach_history"][-1]["thresholds"] == "kept"


def test_taught_images_score_far_below_and_others_only_drop(parent: PatchCoreModel, taught: tuple,
                                                           image_dirs: dict[str, Path]) -> None:
    child, _report, good = taught
    before, after = _scores(parent, good), _scores(child, good)
    assert np.all(after < 0.5 * child.image_threshold) and np.all(after < before)
    others = sorted(image_dirs["test"].glob("*.png"))
    others = [p for p in others if p not in good]
    b, a = _scores(parent, others), _scores(child, others)
    # The bank only grew: no score can rise; an image whose nearest rows are all old keeps its score.
    assert np.all(a <= b * (1 + 1e-5))
    bad = [i for i, p in enumerate(others) if p.name.startswith("b_bad")]
    assert np.allclose(a[bad], b[bad], rtol=1e-5)  # the defects are far from the taught texture


def test_unreadable_images_refused_by_name(parent: PatchCoreModel, tmp_path: Path,
                                           image_dirs: dict[str, Path]) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(TeachError, match="broken.png"):
        teach(parent, [image_dirs["test"] / "a_good_0.png", broken])


def test_flips_list_verdict_changes_with_truth(parent: PatchCoreModel, image_dirs: dict[str, Path],
                                               tmp_path: Path) -> None:
    # A labelled folder (good / red) and a model taught one of its defects as good.
    for sub, pat in (("good", "a_good_*.png"), ("red", "b_bad_*.png")):
        (tmp_path / "test" / sub).mkdir(parents=True)
        for p in image_dirs["test"].glob(pat):
            shutil.copy(p, tmp_path / "test" / sub / p.name)
    wrong, _ = teach(parent, [tmp_path / "test/red/b_bad_0.png"])
    changed, old, new = flips(parent, wrong, scan_folder(tmp_path / "test"))
    assert len(old) == len(new) == 6
    by_name = {Path(f.path).name: f for f in changed}
    assert by_name["b_bad_0.png"].old_verdict == "NG" and by_name["b_bad_0.png"].new_verdict == "OK"
    assert by_name["b_bad_0.png"].truth == "defect"
    for f in changed:
        assert f.old_verdict != f.new_verdict


def test_cli_teach_writes_new_file_and_keeps_parent(tiny_model_path: Path, image_dirs: dict[str, Path],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = file_sha256(tiny_model_path)
    out = tmp_path / "child.patchcore"
    good = str(image_dirs["test"] / "a_good_2.png")
    args = ["teach", str(tiny_model_path), "--good", good, "--output", str(out), "--note", "variant B",
            "--images", str(image_dirs["test"])]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "taught 1 image(s)" in text and "re-scored 6 image(s)" in text
    assert file_sha256(tiny_model_path) == sha
    child = PatchCoreModel.load(out, device="cpu")
    assert child.metadata["teach_history"][-1]["note"] == "variant B"
    # Never overwrites without --force, never the parent, and refuses unreadable images by name.
    stamp = out.stat().st_mtime_ns
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp
    assert main(["teach", str(tiny_model_path), "--good", good, "--output", str(tiny_model_path), "--force"]) == 2
    assert file_sha256(tiny_model_path) == sha
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    out2 = tmp_path / "other.patchcore"
    assert main(["teach", str(tiny_model_path), "--good", good, str(broken), "--output", str(out2)]) == 2
    assert "broken.png" in capsys.readouterr().err and not out2.exists()
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
