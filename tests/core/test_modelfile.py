"""The model file: round trip, and every kind of bad file rejected with one line."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import ModelFileError, read_model_file


def _copy(src: Path, dst: Path, data: bytes | None = None) -> Path:
    dst.write_bytes(src.read_bytes() if data is None else data)
    return dst


def _rewrite_meta(src: Path, dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Re-encode the file with edited metadata but the original tensors (checksum kept)."""
    from safetensors.torch import save

    tensors, meta = read_model_file(src)
    change(meta)
    dst.write_bytes(save(tensors, metadata={"patchcore_gui": json.dumps(meta)}))
    return dst


def test_round_trip_gives_bit_identical_scores(tiny_model_path: Path, image_dirs) -> None:  # type: ignore[no-untyped-def]
    m1 = PatchCoreModel.load(tiny_model_path, device="cpu")
    paths = sorted(str(p) for p in image_dirs["test"].glob("*.png"))
    s1, maps1 = m1.predict(paths)
    m1.save(tiny_model_path.parent / "again.patchcore")
    m2 = PatchCoreModel.load(tiny_model_path.parent / "again.patchcore", device="cpu")
    s2, maps2 = m2.predict(paths)
    assert s1 == s2
    for a, b in zip(maps1, maps2, strict=True):
        assert np.array_equal(a, b)
    assert torch.equal(m1.bank, m2.bank)


def test_metadata_contents(tiny_model_path: Path) -> None:
    _, meta = read_model_file(tiny_model_path)
    for key in ("format_version", "backbone", "layers", "feature_dim", "patch_size", "k", "resize", "crop",
                "normalization", "coreset", "training", "created", "software", "calibration", "threshold",
                "tensor_sha256"):
        assert key in meta, key
    assert meta["training"]["image_count"] == 12
    assert len(meta["training"]["file_list_sha256"]) == 64
    assert meta["coreset"]["fraction"] == 0.5 and meta["coreset"]["seed"] == 0
    assert meta["calibration"]["images"] == 12 and len(meta["calibration"]["scores"]) == 12
    # 12 scores are too few for the 1 % order statistic: extrapolated, never below the largest.
    assert meta["threshold"]["image"] >= max(meta["calibration"]["scores"])
    assert meta["threshold"]["rule"]


def _expect_error(path: Path, fragment: str) -> str:
    with pytest.raises(ModelFileError) as ei:
        PatchCoreModel.load(path, device="cpu")
    msg = str(ei.value)
    assert "\n" not in msg
    assert path.name in msg
    assert fragment in msg, msg
    return msg


def test_truncated_file(tiny_model_path: Path, tmp_path: Path) -> None:
    data = tiny_model_path.read_bytes()
    _expect_error(_copy(tiny_model_path, tmp_path / "t.patchcore", data[: len(data) // 2]), "truncated")
    _expect_error(_copy(tiny_model_path, tmp_path / "t2.patchcore", data[:5]), "not a PatchCore model file")


def test_bit_flip_caught_by_checksum(tiny_model_path: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_model_path.read_bytes())
    data[-100] ^= 0x10  # inside tensor data
    _expect_error(_copy(tiny_model_path, tmp_path / "f.patchcore", bytes(data)), "checksum")


def test_wrong_format_version(tiny_model_path: Path, tmp_path: Path) -> None:
    p = _rewrite_meta(tiny_model_path, tmp_path / "v.patchcore", lambda m: m.update(format_version=99))
    _expect_error(p, "newer")


def test_pickle_renamed_is_rejected_without_unpickling(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tmp_path / "pwned",))

    p = tmp_path / "evil.patchcore"
    p.write_bytes(pickle.dumps(Boom()))
    _expect_error(p, "not a PatchCore model file")
    assert not (tmp_path / "pwned").exists()


def test_absurd_header_size(tmp_path: Path) -> None:
    p = tmp_path / "huge.patchcore"
    p.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    _expect_error(p, "header")


def test_shapes_contradicting_metadata(tiny_model_path: Path, tmp_path: Path) -> None:
    p = _rewrite_meta(tiny_model_path, tmp_path / "s.patchcore", lambda m: m.update(bank_rows=m["bank_rows"] + 1))
    _expect_error(p, "metadata says bank")


def test_other_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "weights.patchcore"
    save_file({"x": torch.zeros(3)}, str(p))
    _expect_error(p, "not a PatchCore Inspector model file")


def test_missing_and_folder(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.patchcore", "not found")
    (tmp_path / "dir.patchcore").mkdir()
    _expect_error(tmp_path / "dir.patchcore", "folder")


def test_with_threshold_keeps_history(tiny_model_path: Path, tmp_path: Path) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    m2 = m.with_threshold(123.0, note="tuned on line 3")
    assert m2.image_threshold == 123.0 and m.image_threshold != 123.0
    m2.save(tmp_path / "thr.patchcore")
    m3 = PatchCoreModel.load(tmp_path / "thr.patchcore", device="cpu")
    assert m3.image_threshold == 123.0
    hist = m3.metadata["threshold"]["history"]
    assert hist[-1]["note"] == "tuned on line 3" and hist[-1]["old_image"] == m.image_threshold
