"""Provenance of bank rows, the training file list and the model file's extra-tensor slot."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError, read_model_file
from patchcore_gui.core.provenance import bank_source_from_selection, relative_to_source

DATA = Path(__file__).resolve().parents[1] / "data"


def _rewrite(src: Path, dst: Path, change_tensors=None, change_meta=None) -> Path:  # type: ignore[no-untyped-def]
    """Re-encode a model file with edited tensors/metadata and a matching checksum."""
    from safetensors.torch import save

    from patchcore_gui.core.modelfile import tensor_checksum

    tensors, meta = read_model_file(src)
    if change_tensors:
        change_tensors(tensors)
    if change_meta:
        change_meta(meta)
    meta["tensor_sha256"] = tensor_checksum(tensors)
    dst.write_bytes(save(tensors, metadata={"patchcore_gui": json.dumps(meta)}))
    return dst


def test_selection_to_image_and_patch_by_hand() -> None:
    # 3 images of 4 patches each: flat row 9 is image 2, patch 1; row 3 is image 0, patch 3.
    got = bank_source_from_selection(np.array([9, 3, 0, 11]), 4)
    assert got.dtype == np.int32
    assert got.tolist() == [[2, 1], [0, 3], [0, 0], [2, 3]]


def test_paths_relative_to_the_training_folder(tmp_path: Path) -> None:
    (tmp_path / "good" / "sub").mkdir(parents=True)
    inside = tmp_path / "good" / "sub" / "a.png"
    assert relative_to_source(inside, tmp_path / "good") == "sub/a.png"
    assert relative_to_source(str(inside), "") == str(inside)
    outside = tmp_path / "elsewhere.png"
    assert relative_to_source(outside, tmp_path / "good") == str(outside)


def test_training_files_are_the_readable_images_with_their_hashes(tiny_model_path: Path, image_dirs) -> None:  # type: ignore[no-untyped-def]
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    files = m.training_files
    expected = sorted(image_dirs["train"].glob("*.png"))
    assert [Path(f["path"]).name for f in files] == [p.name for p in expected]
    for f, p in zip(files, expected, strict=True):
        assert f["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_each_bank_row_is_the_feature_of_its_recorded_image_and_patch(tiny_model_path: Path, image_dirs) -> None:  # type: ignore[no-untyped-def]
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    src = m.bank_source
    assert src is not None and src.shape == (m.bank_size, 2) and src.dtype == np.int32
    paths = sorted(image_dirs["train"].glob("*.png"))
    from PIL import Image

    imgs = torch.stack([m.preprocess(Image.open(p).convert("RGB")) for p in paths])
    feats, (h, w) = m.embed(imgs)
    assert int(src[:, 1].max()) < h * w
    # Every image contributes (coreset 50 % of 12 images), and each row is exactly its source.
    assert set(src[:, 0].tolist()) <= set(range(len(paths)))
    again = feats[torch.from_numpy(src[:, 0].astype(np.int64)), torch.from_numpy(src[:, 1].astype(np.int64))]
    assert torch.allclose(again, m.bank, rtol=1e-5, atol=1e-5)
    # Rows are distinct patches (a coreset never picks one twice).
    assert len({tuple(r) for r in src.tolist()}) == m.bank_size


def test_extra_tensors_and_bank_source_survive_load_and_save(tiny_model_path: Path, tmp_path: Path) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    m.extra_tensors["pictures"] = torch.arange(12, dtype=torch.uint8).reshape(3, 4)
    m.save(tmp_path / "a.patchcore")
    # A feature this version does not know (another extra) survives a load/save/load too.
    p = _rewrite(tmp_path / "a.patchcore", tmp_path / "b.patchcore",
                 change_tensors=lambda t: t.update({"extra/future.thing": torch.ones(2, 2, dtype=torch.float16)}))
    m2 = PatchCoreModel.load(p, device="cpu")
    m2.with_threshold(5.0, note="x").save(tmp_path / "c.patchcore")
    m3 = PatchCoreModel.load(tmp_path / "c.patchcore", device="cpu")
    assert torch.equal(m3.extra_tensors["pictures"], torch.arange(12, dtype=torch.uint8).reshape(3, 4))
    assert m3.extra_tensors["future.thing"].dtype == torch.float16
    assert np.array_equal(m3.bank_source, m.bank_source)
    assert m3.training_files == m.training_files
    # with_threshold gives the copy its own dict: adding to it leaves the original alone.
    c = m3.with_threshold(6.0)
    c.extra_tensors["new"] = torch.zeros(1)
    assert "new" not in m3.extra_tensors


def test_old_files_load_without_provenance() -> None:
    m = PatchCoreModel.load(DATA / "legacy_v1.patchcore", device="cpu")
    assert m.bank_source is None
    assert m.training_files == []
    assert m.extra_tensors == {}


def test_bank_source_that_names_a_missing_image_is_refused(tiny_model_path: Path, tmp_path: Path) -> None:
    def bad_image(t: dict) -> None:  # type: ignore[type-arg]
        t["bank_source"] = t["bank_source"].clone()
        t["bank_source"][0, 0] = 12  # 12 training files: indices 0..11
    p = _rewrite(tiny_model_path, tmp_path / "bad.patchcore", change_tensors=bad_image)
    with pytest.raises(ModelFileError, match="bank_source names image 12 of 12"):
        PatchCoreModel.load(p, device="cpu")

    def bad_shape(t: dict) -> None:  # type: ignore[type-arg]
        t["bank_source"] = t["bank_source"][:-1].clone()
    p = _rewrite(tiny_model_path, tmp_path / "short.patchcore", change_tensors=bad_shape)
    with pytest.raises(ModelFileError, match="bank_source must be int32"):
        PatchCoreModel.load(p, device="cpu")

    p = _rewrite(tiny_model_path, tmp_path / "files.patchcore",
                 change_meta=lambda m: m["training"].update(files=[{"path": "a.png"}]))
    with pytest.raises(ModelFileError, match=r"training.files\[0\]"):
        PatchCoreModel.load(p, device="cpu")


def test_info_says_whether_provenance_is_recorded(tiny_model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.cli import main

    assert main(["info", str(tiny_model_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["provenance"].startswith("recorded: 12 training files")
    assert info["training"]["files"] == "12 recorded"
    assert main(["info", str(DATA / "legacy_v1.patchcore")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["provenance"].startswith("not recorded")
