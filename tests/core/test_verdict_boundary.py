"""The CLI's verdict at the boundary: a score equal to the threshold is OK (NG only when >).

Operators set the threshold to a good image's score (the GUI's "false reject <=" does
exactly that), so the equal case is an everyday one, not a corner.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from guard_helpers import CROP, RESIZE, r18_weights, write_images

from patchcore_gui.cli import main
from patchcore_gui.core.engine import TrainConfig, train_model
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.reports.predict_output import results_csv


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_results_csv_equal_score_is_ok() -> None:
    text = results_csv(["a.png", "b.png", "c.png", "d.png"], np.array([1.5, 2.0, 2.5, np.nan], dtype=np.float32),
                       ["", "", "", "broken"], 2.0)
    rows = _rows(text)
    assert [r["verdict"] for r in rows] == ["OK", "OK", "NG", ""]  # an unscored image: no verdict (its error says why)
    assert [r["normalized_score"] for r in rows] == ["0.75", "1", "1.25", ""]
    # No threshold (uncalibrated model): no verdict at all, not a guess.
    assert [r["verdict"] for r in _rows(results_csv(["a.png"], np.array([1.0], np.float32), [""], float("nan")))] \
        == [""]


@pytest.fixture(scope="module")
def folder_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("verdict")
    model = train_model(write_images(root / "train", 8, seed=5, prefix="good"),
                        TrainConfig(backbone="resnet18", resize=RESIZE, crop=CROP, coreset=1.0, holdout=0.0),
                        weights=r18_weights(), device="cpu", batch_size=4)
    path = root / "m.patchcore"
    model.save(path)
    write_images(root / "test", 5, seed=6, prefix="part")
    return root / "test", path


def test_cli_predict_equal_score_is_ok(folder_and_model: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.core.model import PatchCoreModel

    images, model_path = folder_and_model
    common = ["--images", str(images), "--device", "cpu", "--batch-size", "2", "--num-workers", "0", "--quiet"]
    run = tmp_path / "first.pcrun"
    assert main(["predict", "--model", str(model_path), "--run", str(run), *common]) == 0
    capsys.readouterr()
    with RunFile.open(run, readonly=True) as st:
        names = [Path(p).name for p in st.paths()]
        scores = st.columns()["score"]  # the exact float32 scores
    assert np.isfinite(scores).all() and len(set(scores.tolist())) == 5
    middle = int(np.argsort(scores)[2])
    thr = float(scores[middle])
    tuned = tmp_path / "tuned.patchcore"
    PatchCoreModel.load(model_path, device="cpu").with_threshold(thr, "a part's own score").save(tuned)
    out = tmp_path / "r.csv"
    assert main(["predict", "--model", str(tuned), "--output", str(out), *common]) == 0
    rows = {Path(r["path"]).name: r for r in _rows(out.read_text(encoding="utf-8"))}
    verdicts = {n: rows[n]["verdict"] for n in names}
    # Same images, same batches, same machine: the same float32 scores, so exactly the
    # two parts above the middle one are NG and the middle one itself is OK.
    assert verdicts[names[middle]] == "OK"
    assert rows[names[middle]]["normalized_score"] == "1"
    assert sorted(verdicts.values()) == ["NG", "NG", "OK", "OK", "OK"]
    assert all(verdicts[n] == ("NG" if s > thr else "OK") for n, s in zip(names, scores.tolist(), strict=True))
