"""Evidence (issue 14): training pictures in the model file, the nearest normal patch, ``explain``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.cli import main
from patchcore_gui.core import training_pictures as tp
from patchcore_gui.core.evidence import (
    NO_PROVENANCE,
    EvidenceFinder,
    cell_at,
    cell_box,
    crop_to_original,
    original_to_crop,
)
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.preprocess import Preprocess


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> PatchCoreModel:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    assert m.bank_source is not None and len(m.training_files) == 12
    return m


def _train_path(model: PatchCoreModel, i: int, image_dirs: dict[str, Path]) -> Path:
    src = Path(model.training_files[i]["path"])
    return src if src.is_absolute() else image_dirs["train"] / src


def test_pictures_are_the_inspected_area(tiny_model_path: Path, image_dirs: dict[str, Path]) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    m.extra_tensors.clear()
    tp.attach_pictures(m, [_train_path(m, i, image_dirs) for i in range(12)])
    pics = tp.TrainingPictures.of(m)
    assert pics.available and len(pics) == 12
    for i in (0, 11):
        img = pics.get(i)
        assert img is not None and img.size == (tp.PICTURE_SIZE, tp.PICTURE_SIZE)
        # The picture is the inspected area of that training file (JPEG: close, not equal).
        want = m.preprocess.pil(Image.open(_train_path(m, i, image_dirs)).convert("RGB"))
        want = np.asarray(want.resize((tp.PICTURE_SIZE, tp.PICTURE_SIZE), Image.Resampling.BILINEAR), np.float32)
        assert np.abs(np.asarray(img, np.float32) - want).mean() < 8.0
        other = np.asarray(pics.get(1 - i // 11), np.float32)  # another training image differs
        assert np.abs(other - want).mean() > 8.0


def test_training_stores_the_pictures(model: PatchCoreModel, image_dirs: dict[str, Path]) -> None:
    """train_model attaches one picture per readable training image, in training_files order."""
    stored = tp.unpack(model.extra_tensors)
    assert stored is not None and len(stored) == len(model.training_files) == 12
    assert stored == tp.encode_files([_train_path(model, i, image_dirs) for i in range(12)], model.preprocess)


def test_pictures_shrink_to_fit_the_budget(tiny_model_path: Path, image_dirs: dict[str, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    paths = [_train_path(m, i, image_dirs) for i in range(12)]
    full = sum(len(p) for p in tp.encode_files(paths, m.preprocess))
    # A budget between the 96 px and the 128 px pictures' size: 96 px are kept.
    small = sum(len(p) for p in tp.encode_files(paths, m.preprocess, 96, 75))
    assert small < full
    monkeypatch.setattr(tp, "BUDGET_SHARE", (small + full) / 2 / tp.model_bytes(m))
    tp.attach_pictures(m, paths)
    assert tp.stored_format(m.extra_tensors) == (96, 75)
    assert tp.TrainingPictures.of(m).get(3).size == (96, 96)
    # Nothing fits: the smallest rung.
    monkeypatch.setattr(tp, "BUDGET_SHARE", 1e-9)
    tp.attach_pictures(m, paths)
    assert tp.stored_format(m.extra_tensors) == (64, 70)
    # Taught images get pictures in the stored format.
    from patchcore_gui.core.teach import teach

    child, _ = teach(m, [image_dirs["test"] / "a_good_0.png"])
    pics = tp.TrainingPictures.of(child)
    assert len(pics) == 13 and pics.get(12).size == (64, 64)


def test_pack_unpack_and_damaged_offsets() -> None:
    pics = [b"abc", b"", b"defgh"]
    t = tp.pack(pics)
    assert t[tp.OFFSETS_KEY].tolist() == [0, 3, 3, 8]
    assert tp.unpack(t) == pics
    assert tp.unpack(tp.appended(t, [b"zz"], 3)) == [*pics, b"zz"]
    # A model without pictures gets empty entries for its old images, so indices stay aligned.
    assert tp.unpack(tp.appended(None, [b"zz"], 2)) == [b"", b"", b"zz"]
    bad = dict(t)
    bad[tp.OFFSETS_KEY] = torch.tensor([0, 9, 8, 8])  # past the blob, then backwards
    assert tp.unpack(bad) is None
    assert not tp.TrainingPictures(tp.unpack(bad)).available


def test_geometry_round_trip_and_cells() -> None:
    pre = Preprocess(72, 64)
    for x, y in ((0.0, 0.0), (50.5, 33.0), (103.0, 95.0)):
        cx, cy = original_to_crop(pre, 104, 96, x, y)
        assert np.allclose(crop_to_original(pre, 104, 96, cx, cy), (x, y))
    # 104 x 96 -> resize 78 x 72 -> crop offsets (7, 4): original (10, 10) is crop (0.5, 3.5).
    assert np.allclose(original_to_crop(pre, 104, 96, 10, 10), (0.5, 3.5))
    assert cell_at((8, 8), 64, 0.5, 3.5) == (0, 0)
    assert cell_at((8, 8), 64, 63.9, 8.0) == (1, 7)
    assert cell_at((8, 8), 64, -5, 99) == (7, 0)  # clamped
    # Box: patch_size (3) strides (8 px) centred on the cell, clipped to the crop.
    assert cell_box((8, 8), 64, (4, 4), 3) == (24.0, 24.0, 48.0, 48.0)
    assert cell_box((8, 8), 64, (0, 7), 3) == (48.0, 0.0, 64.0, 16.0)


def test_nearest_is_exact_and_hottest_by_default(model: PatchCoreModel, image_dirs: dict[str, Path]) -> None:
    path = image_dirs["test"] / "b_bad_0.png"
    finder = EvidenceFinder(model)
    ev = finder.explain(path)
    scores, grids = model.score_tensor(model.preprocess(Image.open(path).convert("RGB"))[None])
    assert ev.hottest and ev.cell == np.unravel_index(int(np.argmax(grids[0])), grids[0].shape)
    assert ev.image_score == pytest.approx(float(scores[0]), rel=1e-5)
    assert ev.patch_score == pytest.approx(float(grids[0][ev.cell]), rel=1e-5)
    # The nearest row is the true nearest (brute force in float64) at the model's k = 1 score.
    feats, (h, w) = model.embed(model.preprocess(Image.open(path).convert("RGB"))[None])
    q = feats[0, ev.cell[0] * w + ev.cell[1]].double()
    d = ((model.bank.double() - q) ** 2).sum(1).numpy()
    assert ev.nearest.bank_row == int(np.argmin(d))
    assert ev.nearest.distance == pytest.approx(float(d.min()), rel=1e-4)
    assert ev.nearest.distance == pytest.approx(ev.patch_score, rel=1e-4)
    src = model.bank_source[ev.nearest.bank_row]
    assert ev.nearest.image_index == int(src[0])
    assert ev.nearest.cell == (int(src[1]) // w, int(src[1]) % w)
    # Others: distinct images, not the nearest's, ascending, each at its own nearest row.
    imgs = [o.image_index for o in ev.others]
    assert len(imgs) == 4 and len(set(imgs)) == 4 and ev.nearest.image_index not in imgs
    dists = [o.distance for o in ev.others]
    assert dists == sorted(dists) and dists[0] >= ev.nearest.distance
    for o in ev.others:
        rows = np.flatnonzero(model.bank_source[:, 0] == o.image_index)
        assert o.distance == pytest.approx(float(d[rows].min()), rel=1e-4)
    js = json.loads(json.dumps(ev.to_json()))
    assert js["nearest"]["name"] == Path(model.training_files[ev.nearest.image_index]["path"]).name


def test_a_training_patch_finds_itself(model: PatchCoreModel, image_dirs: dict[str, Path]) -> None:
    """A bank row's own image and cell explain to distance 0 at that row: provenance and the
    cell arithmetic agree with the feature grid."""
    row = 5
    img_i, patch_i = (int(v) for v in model.bank_source[row])
    src = Path(model.training_files[img_i]["path"])
    grid_w = 8  # 64 px crop, EfficientNet-Lite0's stride 8
    ev = EvidenceFinder(model).explain(src, cell=(patch_i // grid_w, patch_i % grid_w))
    assert ev.grid == (8, 8)
    assert ev.nearest.distance == pytest.approx(0.0, abs=1e-3)
    assert ev.nearest.image_index == img_i and ev.nearest.cell == ev.cell


def test_at_picks_the_cell_under_the_pixel(model: PatchCoreModel, image_dirs: dict[str, Path]) -> None:
    path = image_dirs["test"] / "a_good_0.png"
    ev = EvidenceFinder(model).explain(path, at=(10, 10))
    assert ev.cell == (0, 0)
    x0, y0, x1, y1 = ev.box_original
    assert x0 <= 10 <= x1 and y0 <= 10 <= y1


def test_old_file_without_provenance_or_pictures(model: PatchCoreModel, image_dirs: dict[str, Path]) -> None:
    old = PatchCoreModel(model.config, model.extractor, model.bank, model.metadata, device="cpu")
    ev = EvidenceFinder(old).explain(image_dirs["test"] / "b_bad_0.png")
    assert ev.nearest.image_index == -1 and ev.others == []
    assert NO_PROVENANCE in ev.notes and tp.UNAVAILABLE in ev.notes and not ev.pictures


def test_cli_explain_png_json_and_bad_at(tiny_model_path: Path, image_dirs: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    img = str(image_dirs["test"] / "b_bad_1.png")
    out = tmp_path / "ev.png"
    assert main(["explain", "--model", str(tiny_model_path), img, "--output", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["hottest"] is True and js["image"] == img and js["nearest"]["image_index"] >= 0
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 4 * 200
    assert main(["explain", "--model", str(tiny_model_path), img, "--at", "20", "30"]) == 0
    text = capsys.readouterr().out
    assert "Nearest normal:" in text and "chosen patch" in text
    assert main(["explain", "--model", str(tiny_model_path), img, "--at", "500", "3"]) == 2
    assert "outside the image" in capsys.readouterr().err


def test_report_evidence_block_for_each_flagged_image(tiny_model_path: Path, image_dirs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    from patchcore_gui.core.datasets import scan_folder
    from patchcore_gui.core.run_driver import predict_into_run
    from patchcore_gui.reports.report import write_report

    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    run = tmp_path / "run.sqlite"
    predict_into_run(m, scan_folder(image_dirs["test"]), run, batch_size=4)
    scores = np.array(m.predict(sorted(str(p) for p in image_dirs["test"].glob("*.png")))[0])
    n_ng = int((scores > m.image_threshold).sum())
    assert n_ng >= 3  # the three planted defects
    plain, with_ev = tmp_path / "plain.html", tmp_path / "ev.html"
    write_report(run, plain)
    write_report(run, with_ev, evidence=True)
    text = with_ev.read_text(encoding="utf-8")
    assert "Evidence: nearest normal patch" not in plain.read_text(encoding="utf-8")
    assert "Evidence: nearest normal patch" in text
    assert text.count("alt='evidence for ") == n_ng
    pdf_plain, pdf_ev = tmp_path / "plain.pdf", tmp_path / "ev.pdf"
    write_report(run, pdf_plain)
    write_report(run, pdf_ev, evidence=True)
    # One more page holding one more picture per NG image.
    pages = [len(re.findall(rb"/Type\s*/Page[^s]", p.read_bytes())) for p in (pdf_plain, pdf_ev)]
    images = [p.read_bytes().count(b"/Subtype /Image") for p in (pdf_plain, pdf_ev)]
    assert pages[1] == pages[0] + 1 and images[1] == images[0] + n_ng
