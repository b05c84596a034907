"""The ``patchcore`` CLI end to end on generated images."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from patchcore_gui.cli import main

TINY = ["--backbone", "efficientnet_lite0", "--resize", "72", "--crop", "64", "--coreset", "0.5", "--quiet"]


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A tiny MVTec-layout class: train/good, test/good, test/red, ground_truth/red."""
    from tests_helpers import textured, with_defect  # type: ignore[import-not-found]

    root = tmp_path_factory.mktemp("mvtec") / "widget"
    rng = np.random.default_rng(11)
    for d in ("train/good", "test/good", "test/red", "ground_truth/red"):
        (root / d).mkdir(parents=True)
    for i in range(10):
        Image.fromarray(textured(rng)).save(root / "train/good" / f"{i:03d}.png")
    for i in range(4):
        Image.fromarray(textured(rng)).save(root / "test/good" / f"{i:03d}.png")
        y, x = 20 + 10 * i, 30
        Image.fromarray(with_defect(textured(rng), y, x)).save(root / "test/red" / f"{i:03d}.png")
        mask = np.zeros((96, 104), dtype=np.uint8)
        mask[y : y + 14, x : x + 14] = 255
        Image.fromarray(mask).save(root / "ground_truth/red" / f"{i:03d}_mask.png")
    return root


@pytest.fixture(scope="module")
def trained(mvtec, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("m") / "widget.patchcore"
    assert main(["train", "--images", str(mvtec), "--output", str(out), *TINY, "--false-reject", "0.05"]) == 0
    return out


def test_train_writes_model_from_train_good(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    assert trained.is_file()
    assert main(["info", str(trained)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["training"]["image_count"] == 10  # train/good only, not test/
    assert info["memory_bank"]["dims"] == 152  # native layout default for efficientnet_lite0
    # int(10 images x 64 rows x 0.5): every image is in the final bank (calibration holds none out).
    assert info["memory_bank"]["rows"] == 320
    assert info["threshold"]["source"] == "calibration"
    assert info["threshold"]["false_reject_rate"] == 0.05 and info["calibration"]["images"] == 10


def test_predict_csv_and_maps(trained, mvtec, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    (mvtec / "test" / "zz_broken.png").write_bytes(b"")
    try:
        out = tmp_path / "r.csv"
        maps = tmp_path / "maps.npz"
        rc = main(["predict", "--model", str(trained), "--images", str(mvtec / "test"),
                   "--output", str(out), "--maps-out", str(maps), "--quiet", "--batch-size", "3"])
        assert rc == 0
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0].keys()) == ["path", "score", "normalized_score", "verdict", "error"]
        assert len(rows) == 9
        broken = [r for r in rows if r["path"].endswith("zz_broken.png")][0]
        assert broken["verdict"] == "" and "empty" in broken["error"] and broken["score"] == ""
        reds = [float(r["score"]) for r in rows if "/red/" in r["path"]]
        goods = [float(r["score"]) for r in rows if "/good/" in r["path"]]
        assert min(reds) > max(goods)
        assert all(r["verdict"] == "NG" for r in rows if "/red/" in r["path"])
        from patchcore_gui.core.model import PatchCoreModel

        m = PatchCoreModel.load(trained, device="cpu")
        for r in rows:
            if r["score"]:
                assert float(r["normalized_score"]) == pytest.approx(float(r["score"]) / m.image_threshold, rel=1e-5)
        with np.load(maps) as z:
            assert list(z["paths"]) == [r["path"] for r in rows]
            assert z["maps"].shape == (9, 64, 64) and z["maps"].dtype == np.float32
            assert np.isnan(z["maps"][-1]).all() and np.isfinite(z["maps"][0]).all()
            # Same maps as the Python API gives for the same batch, bit for bit.
            _, want = m.predict([r["path"] for r in rows[:3]])
            for i in range(3):
                np.testing.assert_array_equal(z["maps"][i], want[i])
    finally:
        (mvtec / "test" / "zz_broken.png").unlink()


def test_evaluate_metrics(trained, mvtec, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(trained), "--dataset", str(mvtec), "--output", str(out), "--quiet"]) == 0
    m = json.loads(out.read_text())
    assert m["images"] == 8 and m["errors"] == 0
    assert m["image_auroc"] == 1.0
    assert m["pixel_auroc"] > 0.9
    assert 0.5 < m["pro"] <= 1.0
    assert m["f1"] == 1.0


def test_bad_model_exit_code_2_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.patchcore"
    bad.write_bytes(b"not a model at all, just text")
    proc = subprocess.run(
        [sys.executable, "-m", "patchcore_gui.cli", "predict", "--model", str(bad), "--images", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.patchcore" in lines[0]


def test_bad_arguments_exit_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as ei:
        main(["train", "--images", str(tmp_path)])  # --output missing
    assert ei.value.code == 2
    assert main(["train", "--images", str(tmp_path / "none"), "--output", str(tmp_path / "m"), *TINY]) == 2
    assert "error" in capsys.readouterr().err


def test_console_script_is_entry_which_returns_main_code_and_freezes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``patchcore`` runs ``cli.entry``: main's exit code, then the objects frozen for a quick exit."""
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["patchcore"] == "patchcore_gui.cli:entry"
    bad = tmp_path / "bad.patchcore"
    bad.write_bytes(b"not a model")
    code = ("import gc, sys\nfrom patchcore_gui.cli import entry\n"
            f"rc = entry(['info', {str(bad)!r}])\n"
            "print(rc, gc.get_freeze_count() > 0, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "2 True"
    assert "bad.patchcore" in proc.stderr
