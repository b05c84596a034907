"""``patchcore threshold MODEL``: values and rates, the history, and refusals that leave the file alone."""

from __future__ import annotations

import getpass
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from patchcore_gui.cli import main
from patchcore_gui.core.calibration import review_for_rate, threshold_for_rate
from patchcore_gui.core.model import PatchCoreModel

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture()
def model_copy(tiny_model_path: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "m.patchcore"
    shutil.copyfile(tiny_model_path, dst)
    return dst


def _user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except Exception:
        return "unknown"


def test_values_are_written_with_history_and_printed(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = PatchCoreModel.load(model_copy, device="cpu")
    rc = main(["threshold", str(model_copy), "--image", "150", "--review-from", "120", "--pixel", "33.5",
               "--note", "line 3 trial"])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"image threshold: {before.image_threshold:.6g} -> 150", "review from: none -> 120",
                   f"pixel threshold: {before.pixel_threshold:.6g} -> 33.5"]
    m = PatchCoreModel.load(model_copy, device="cpu")
    assert (m.image_threshold, m.review_from, m.pixel_threshold) == (150.0, 120.0, 33.5)
    e = m.metadata["threshold"]["history"][-1]
    assert e["user"] == _user() and e["note"] == "line 3 trial"
    assert e["old_image"] == before.image_threshold and e["image"] == 150.0 and e["review_from"] == 120.0
    assert m.threshold_info["source"] == "manual" and "false_reject_rate" not in m.threshold_info
    # Only metadata changed: the bank, its provenance and the scores are the same.
    assert torch.equal(m.bank, before.bank) and np.array_equal(m.bank_source, before.bank_source)
    assert np.array_equal(m.calibration_scores, before.calibration_scores)
    assert [p.name for p in model_copy.parent.iterdir()] == ["m.patchcore"]  # no temporary left behind


def test_rates_are_estimated_from_the_calibration_scores(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = PatchCoreModel.load(model_copy, device="cpu").calibration_scores
    assert main(["threshold", str(model_copy), "--false-reject", "0.05", "--review-rate", "0.25"]) == 0
    m = PatchCoreModel.load(model_copy, device="cpu")
    assert m.image_threshold == threshold_for_rate(scores, 0.05)
    assert m.review_from == review_for_rate(scores, m.image_threshold, 0.25) < m.image_threshold
    th = m.threshold_info
    assert th["false_reject_rate"] == 0.05 and th["review_rate"] == 0.25 and th["source"] == "calibration"
    assert "image: 5 % false rejects estimated from 12 out-of-bank scores" in th["rule"]
    assert "review band: 25 % of good parts" in th["rule"]
    # The band alone can be turned off again.
    capsys.readouterr()
    assert main(["threshold", str(model_copy), "--review-from", "none"]) == 0
    assert capsys.readouterr().out.strip().endswith("-> none")
    assert math.isnan(PatchCoreModel.load(model_copy, device="cpu").review_from)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--image", "-1"], "image threshold must be a finite number >= 0"),
        (["--image", "-1000000000"], "image threshold must be a finite number >= 0"),
        (["--image", "nan"], "image threshold must be a finite number >= 0"),
        (["--image", "inf"], "image threshold must be a finite number >= 0"),
        (["--image", "abc"], "--image must be a number"),
        (["--pixel", "-2"], "pixel threshold must be a finite number >= 0"),
        (["--image", "100", "--review-from", "101"], "review start 101 lies above the image threshold 100"),
        (["--review-from", "1e9"], "lies above the image threshold"),
        (["--review-from", "-3"], "review start must be a finite number >= 0"),
        (["--false-reject", "0"], "--false-reject must lie strictly between 0 and 1"),
        (["--false-reject", "1.5"], "--false-reject must lie strictly between 0 and 1"),
        (["--false-reject", "nan"], "--false-reject must lie strictly between 0 and 1"),
        (["--review-rate", "1"], "--review-rate must lie strictly between 0 and 1"),
        (["--image", "5", "--false-reject", "0.1"], "give --image or --false-reject, not both"),
        (["--review-from", "5", "--review-rate", "0.1"], "give --review-from or --review-rate, not both"),
        ([], "nothing to change"),
    ],
)
def test_bad_values_exit_2_with_one_line_and_leave_the_file(model_copy: Path, capsys: pytest.CaptureFixture[str],
                                                            args: list[str], fragment: str) -> None:
    before = model_copy.read_bytes()
    assert main(["threshold", str(model_copy), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert model_copy.read_bytes() == before


def test_a_rate_on_a_model_without_calibration_scores_is_refused(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "legacy.patchcore"
    shutil.copyfile(DATA / "legacy_v1.patchcore", old)  # trained without a hold-out: no scores
    before = old.read_bytes()
    assert main(["threshold", str(old), "--false-reject", "0.01"]) == 2
    assert "has no calibration scores" in capsys.readouterr().err
    assert old.read_bytes() == before
    # A value works on it, and the file keeps scoring as it did (format-1 BatchNorms stay unwarmed).
    assert main(["threshold", str(old), "--image", "2.5"]) == 0
    m = PatchCoreModel.load(old, device="cpu")
    assert m.image_threshold == 2.5 and m.metadata["bn_warmup"] == "none"


def test_info_shows_how_the_thresholds_were_set(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["info", str(model_copy)]) == 0
    s = json.loads(capsys.readouterr().out)["threshold_summary"]
    assert s["threshold_rule"].startswith("image: 1 % false rejects estimated from 12 out-of-bank scores")
    assert (s["false_reject_rate"], s["calibration_count"], s["calibration_method"]) == (0.01, 12, "out-of-bank")
    assert s["threshold_history"] == [] and s["review_from"] is None  # NaN prints as null
    assert main(["threshold", str(model_copy), "--review-rate", "0.05", "--note", "5 % to a person"]) == 0
    capsys.readouterr()
    assert main(["info", str(model_copy)]) == 0
    s = json.loads(capsys.readouterr().out)["threshold_summary"]
    assert s["review_rate"] == 0.05 and s["review_from"] > 0
    assert f"{_user()}: review from none -> " in s["threshold_history"][-1] and s["threshold_history"][-1].endswith(
        "(5 % to a person)")
