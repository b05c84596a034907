"""The review band in the predict CSV, the run file and ``patchcore predict`` (OK / REVIEW / NG)."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.cli import main
from patchcore_gui.core.datasets import list_images_with_truth
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.core.verdict import verdict
from patchcore_gui.reports.predict_output import results_csv

NAN = math.nan


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_verdict_column_at_the_band_edges() -> None:
    paths = ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]
    scores = np.array([1.0, 2.0, 2.5, 4.0, 4.5, NAN], dtype=np.float32)
    errors = ["", "", "", "", "", "not a recognised image format"]
    rows = _rows(results_csv(paths, scores, errors, 4.0, 2.0))
    assert [r["verdict"] for r in rows] == ["OK", "OK", "REVIEW", "REVIEW", "NG", ""]
    assert rows[-1]["error"] == "not a recognised image format"
    # No band: the two verdicts of old; no threshold: no verdict at all.
    assert [r["verdict"] for r in _rows(results_csv(paths, scores, errors, 4.0))] == ["OK"] * 4 + ["NG", ""]
    assert [r["verdict"] for r in _rows(results_csv(paths, scores, errors, NAN, 2.0))] == [""] * 6


@pytest.fixture(scope="module")
def banded(tiny_model_path: Path, image_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with thresholds placed between its test scores: 2 OK, 2 REVIEW, 2 NG."""
    from patchcore_gui.core.engine import iter_predict

    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    iset = list_images_with_truth(image_dirs["test"])
    scores = np.sort(np.concatenate([r.scores for r in iter_predict(model, iset, batch_size=6)]))
    assert len(scores) == 6 and np.all(np.diff(scores) > 0)
    model.metadata["threshold"]["review_from"] = float((scores[1] + scores[2]) / 2)
    model.metadata["threshold"]["image"] = float((scores[3] + scores[4]) / 2)
    out = tmp_path_factory.mktemp("banded") / "banded.patchcore"
    model.save(out)
    return out


def test_predict_writes_ok_review_and_ng(banded: Path, image_dirs: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    m = PatchCoreModel.load(banded, device="cpu")
    assert math.isfinite(m.review_from) and m.review_from < m.image_threshold
    out = tmp_path / "r.csv"
    assert main(["predict", "--model", str(banded), "--images", str(image_dirs["test"]), "--output", str(out),
                 "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    words = [r["verdict"] for r in rows]
    assert sorted(words) == ["NG", "NG", "OK", "OK", "REVIEW", "REVIEW"]
    for r in rows:
        assert r["verdict"] == verdict(float(r["score"]), m.image_threshold, m.review_from)
    err = capsys.readouterr().err
    assert "2 NG, 2 REVIEW, 2 OK, 0 errors" in err and "review from" in err


def test_run_file_records_the_band_and_its_changes(banded: Path, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    m = PatchCoreModel.load(banded, device="cpu")
    run = tmp_path / "r.pcrun"
    out = tmp_path / "r.csv"
    assert main(["predict", "--model", str(banded), "--images", str(image_dirs["test"]), "--run", str(run),
                 "--output", str(out), "--quiet"]) == 0
    assert sorted(r["verdict"] for r in csv.DictReader(out.open())) == ["NG", "NG", "OK", "OK", "REVIEW", "REVIEW"]
    with RunFile.open(run) as st:
        assert st.review_from == pytest.approx(m.review_from)
        thr = st.image_threshold
        st.set_threshold(thr * 0.5, note="wider band", kind="review")
        with pytest.raises(ValueError, match="above the image threshold"):
            st.set_threshold(thr * 1.5, kind="review")
        with pytest.raises(ValueError):
            st.set_threshold(-1.0, kind="review")
        with pytest.raises(ValueError):
            st.set_threshold(math.inf, kind="review")
        with pytest.raises(ValueError, match="above the image threshold"):
            st.set_threshold(thr * 0.4, kind="image")  # the band's start would lie above it
        with pytest.raises(ValueError):
            st.set_threshold(-5.0)
        assert st.review_from == pytest.approx(thr * 0.5) and st.image_threshold == thr  # refusals changed nothing
        st.set_threshold(NAN, note="band off", kind="review")
        log = st.threshold_log()
    assert [(c.kind, c.note) for c in log] == [("review", "wider band"), ("review", "band off")]
    assert log[0].old == pytest.approx(m.review_from) and log[0].new == pytest.approx(thr * 0.5)
    assert math.isnan(log[1].new)
    with RunFile.open(run, readonly=True) as ro:
        assert math.isnan(ro.review_from)
        assert ro.meta["review_from"] is None


def test_old_run_file_without_the_band_reads_as_none(tiny_model_path: Path, image_dirs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    run = tmp_path / "old.pcrun"
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(image_dirs["test"]), "--run", str(run),
                 "--output", str(tmp_path / "a.csv"), "--quiet"]) == 0
    with sqlite3.connect(run) as conn:  # as a run file written before the band existed
        conn.execute("DELETE FROM meta WHERE key = 'review_from'")
    with RunFile.open(run, readonly=True) as ro:
        assert "review_from" not in ro.meta and math.isnan(ro.review_from)
    assert main(["predict", "--run", str(run), "--resume", "--output", str(tmp_path / "b.csv"), "--quiet"]) == 0
    assert {r["verdict"] for r in csv.DictReader((tmp_path / "b.csv").open())} <= {"OK", "NG"}


def test_evaluate_reports_the_band_beside_unchanged_metrics(banded: Path, tiny_model_path: Path,
                                                          image_dirs: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shutil

    root = tmp_path / "cls"
    for sub, pattern in (("good", "a_good_*.png"), ("dent", "b_bad_*.png")):
        (root / "test" / sub).mkdir(parents=True)
        for p in image_dirs["test"].glob(pattern):
            shutil.copy(p, root / "test" / sub / p.name)
    results = []
    for model in (tiny_model_path, banded):
        assert main(["evaluate", "--model", str(model), "--dataset", str(root)]) == 0
        results.append(json.loads(capsys.readouterr().out))
    plain, band = results
    assert "review_good" not in plain
    assert band["image_auroc"] == plain["image_auroc"]
    m = PatchCoreModel.load(banded, device="cpu")
    assert band["review_from"] == pytest.approx(m.review_from)
    # The banded model's thresholds sit between its scores: 2 OK, 2 REVIEW, 2 NG over 3 good + 3 defect.
    assert band["review_good"] + band["review_defect"] == 2
