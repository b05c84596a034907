"""Importing official patchcore-inspection models: faithful, and never running the pickle."""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import faiss  # a hard dependency: a skip here would hide the pickle-safety tests
import numpy as np
import pytest
import torch

from patchcore_gui.cli import main
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.official_import import (
    INDEX_FILE,
    PARAMS_FILE,
    OfficialImportError,
    RestrictedUnpickler,
    UnsafePickleError,
    default_resize,
    import_official,
    load_params,
    read_faiss_flat_l2,
)

CROP = 64
#: round(64 * 256 / 224) = 73: the default the importer must derive for this crop.
RESIZE = 73


def official_params(**changes: Any) -> dict[str, Any]:
    """The settings dict exactly as patchcore-inspection's ``save_to_path`` writes it."""
    params: dict[str, Any] = {
        "backbone.name": "resnet18",
        "layers_to_extract_from": ["layer2", "layer3"],
        "input_shape": (3, CROP, CROP),
        "pretrain_embed_dimension": 1024,
        "target_embed_dimension": 1024,
        "patchsize": 3,
        "patchstride": 1,
        "anomaly_scorer_num_nn": 1,
    }
    params.update(changes)
    return params


def write_official(folder: Path, bank: np.ndarray, params: dict[str, Any] | None = None,
                   protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """A model folder as the reference saves it: pickle.dump + faiss.write_index."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / PARAMS_FILE, "wb") as fh:
        pickle.dump(official_params() if params is None else params, fh, protocol)
    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(np.ascontiguousarray(bank, dtype=np.float32))
    faiss.write_index(index, str(folder / INDEX_FILE))
    return folder


@pytest.fixture(scope="module")
def r18_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Randomly initialised resnet18 weights with a fixed seed (no download possible here)."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-seed0.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def original(image_dirs: dict[str, Path], r18_weights: Path) -> PatchCoreModel:
    """Our own model with the reference layout; its bank plays the official index."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    return train_model(
        sorted(image_dirs["train"].glob("*.png")),
        TrainConfig(backbone="resnet18", resize=RESIZE, crop=CROP, coreset=0.5, holdout=0.0),
        weights=r18_weights, device="cpu", batch_size=6,
    )


@pytest.fixture(scope="module")
def official_dir(original: PatchCoreModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_official(tmp_path_factory.mktemp("official") / "bottle", original.bank.numpy())


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("patchcore: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- faiss format


@pytest.mark.parametrize(("n", "d"), [(3, 4), (1, 7), (50, 1024)])
def test_faiss_parser_matches_faiss_write_index(tmp_path: Path, n: int, d: int) -> None:
    rng = np.random.default_rng(n * d)
    bank = rng.normal(size=(n, d)).astype(np.float32)
    index = faiss.IndexFlatL2(d)
    index.add(bank)
    path = tmp_path / INDEX_FILE
    faiss.write_index(index, str(path))
    vectors, digest = read_faiss_flat_l2(path)
    assert vectors.dtype == np.float32 and vectors.shape == (n, d)
    assert np.array_equal(vectors, bank)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    # The layout the parser assumes: 37-byte header + uint64 count of float32 values.
    raw = path.read_bytes()
    assert raw[:4] == b"IxF2" and len(raw) == 37 + 8 + n * d * 4
    assert struct.unpack_from("<Q", raw, 37)[0] == n * d


def _faiss_bytes(n: int = 4, d: int = 8) -> bytes:
    index = faiss.IndexFlatL2(d)
    index.add(np.arange(n * d, dtype=np.float32).reshape(n, d))
    return bytes(faiss.serialize_index(index))


@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("truncated", lambda b: b[: len(b) - 10], "truncated"),
        ("header only", lambda b: b[:20], "truncated"),
        ("empty", lambda b: b"", "not a faiss"),
        ("trailing bytes", lambda b: b + b"\0\0\0\0", "trailing bytes"),
        ("huge ntotal", lambda b: b[:8] + struct.pack("<q", 2**40) + b[16:], "values stored"),
        ("huge ntotal and count", lambda b: b[:8] + struct.pack("<q", 2**40) + b[16:37]
         + struct.pack("<Q", 2**40 * 8) + b[45:], "truncated"),
        ("zero dim", lambda b: b[:4] + struct.pack("<i", 0) + b[8:], "dimension 0"),
        ("negative dim", lambda b: b[:4] + struct.pack("<i", -5) + b[8:], "dimension -5"),
        ("no vectors", lambda b: b[:8] + struct.pack("<q", 0) + b[16:], "no vectors"),
        ("inner product metric", lambda b: b[:33] + struct.pack("<i", 0) + b[37:], "not L2"),
        ("nan in bank", lambda b: b[:45] + struct.pack("<f", math.nan) + b[49:], "NaN"),
        ("text file", lambda b: b"hello, this is not faiss at all\n" * 3, "not a faiss IndexFlatL2"),
    ],
)
def test_bad_faiss_files_are_one_line_errors(tmp_path: Path, name: str, make: Any, fragment: str) -> None:
    path = tmp_path / INDEX_FILE
    path.write_bytes(make(_faiss_bytes()))
    with pytest.raises(OfficialImportError) as ei:
        read_faiss_flat_l2(path)
    msg = str(ei.value)
    assert fragment in msg and "\n" not in msg, (name, msg)


def test_other_index_types_are_named(tmp_path: Path) -> None:
    index = faiss.IndexFlatIP(4)
    index.add(np.ones((2, 4), dtype=np.float32))
    faiss.write_index(index, str(tmp_path / INDEX_FILE))
    with pytest.raises(OfficialImportError, match="IndexFlatIP"):
        read_faiss_flat_l2(tmp_path / INDEX_FILE)
    hnsw = faiss.IndexHNSWFlat(4, 8)
    hnsw.add(np.ones((2, 4), dtype=np.float32))
    faiss.write_index(hnsw, str(tmp_path / "h.faiss"))
    with pytest.raises(OfficialImportError, match="IndexHNSWFlat"):
        read_faiss_flat_l2(tmp_path / "h.faiss")


def test_default_resize_follows_the_reference() -> None:
    assert default_resize(224) == 256
    assert default_resize(320) == 366
    assert default_resize(CROP) == RESIZE
    assert default_resize(448) == 512


# --------------------------------------------------------------------------- pickle


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_settings_load_with_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / PARAMS_FILE
    path.write_bytes(pickle.dumps(official_params(), protocol))
    assert load_params(path) == official_params()


class _TouchOnLoad:
    """Unpickling this would create ``target`` (a stand-in for any payload)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.target,))


class _SystemOnLoad:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.target}",))


def _malicious_pickles(marker: Path) -> dict[str, bytes]:
    """Payloads that would create ``marker`` or hold non-plain values if loaded."""
    return {
        "reduce Path.touch": pickle.dumps(official_params(patchsize=_TouchOnLoad(marker)), 5),
        "os.system": pickle.dumps(_SystemOnLoad(marker), 5),
        "os.system protocol 0": pickle.dumps(_SystemOnLoad(marker), 0),
        # Hand-written: GLOBAL + BUILD without any REDUCE.
        "global + build": b"(c" + b"collections\nOrderedDict\n" + b"o}b.",
        "build on a dict": b"}}b.",
        "set value": pickle.dumps({"a": {1, 2}}, 5),
        "bytes value": pickle.dumps({"a": b"raw"}, 5),
        "persistent id": b"\x80\x05\x8c\x01x\x94Q.",
    }


def test_malicious_pickles_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, data in _malicious_pickles(marker).items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        with pytest.raises(UnsafePickleError) as ei:
            load_params(path)
        msg = str(ei.value)
        assert "refused" in msg and "\n" not in msg, (name, msg)
        assert not marker.exists(), name
    # The error names what the pickle wanted.
    path = tmp_path / "sys.pkl"
    path.write_bytes(pickle.dumps(_SystemOnLoad(marker), 5))
    with pytest.raises(UnsafePickleError, match=r"import (posix|os|nt)\.system"):
        load_params(path)


def test_restricted_unpickler_refuses_globals_on_its_own() -> None:
    # Second barrier: even without the opcode check, find_class never resolves a name.
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(os.system))).load()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not a valid pickle"),
        (b"\x80\x05\x95" + struct.pack("<Q", 2**62) + b"}\x94.", "not a valid pickle"),
        (b"\x80\x05\x8d" + struct.pack("<Q", 2**62) + b"abc", "not a valid pickle"),
        (b"I" + b"1" * 100_000 + b"\n.", "not a valid pickle"),
        (pickle.dumps([1, 2, 3], 5), "not the settings dict"),
        (b"(" * 50_000 + b"l" * 50_000 + b".", "refused"),  # nesting deeper than any settings
    ],
)
def test_garbage_pickles_are_one_line_errors(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = tmp_path / PARAMS_FILE
    path.write_bytes(data)
    with pytest.raises(OfficialImportError) as ei:
        load_params(path)
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_oversized_pickle_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / PARAMS_FILE
    path.write_bytes(b"\0" * (2 << 20))
    with pytest.raises(OfficialImportError, match="bytes"):
        load_params(path)


# --------------------------------------------------------------------------- end to end


def test_import_end_to_end_scores_match(official_dir: Path, original: PatchCoreModel, r18_weights: Path,
                                        image_dirs: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.patchcore"
    rc, stdout, err = _run(["import-official", str(official_dir), "--output", str(out), "--trust-pickle",
                            "--weights", str(r18_weights), "--device", "cpu"], capsys)
    assert rc == 0, err
    assert "resnet18" in stdout and str(out) in stdout
    model = PatchCoreModel.load(out, device="cpu")
    assert model.config.resize == RESIZE and model.config.crop == CROP
    assert model.config.embedding.mode == "reference" and model.config.k == 1
    assert torch.equal(model.bank, original.bank)
    paths = sorted(str(p) for p in image_dirs["test"].glob("*.png"))
    s_orig, maps_orig = original.predict(paths)
    s_imp, maps_imp = model.predict(paths)
    assert s_imp == s_orig
    for a, b in zip(maps_orig, maps_imp, strict=True):
        assert np.array_equal(a, b)
    # Defects still stand out: the import did not just produce numbers.
    assert min(s for p, s in zip(paths, s_imp, strict=True) if "bad" in p) > max(
        s for p, s in zip(paths, s_imp, strict=True) if "good" in p)
    meta = model.metadata
    src = meta["imported_from"]
    assert src["backbone.name"] == "resnet18" and src["input_shape"] == [3, CROP, CROP]
    assert src["source"] == str(official_dir.resolve())
    assert src["faiss_sha256"] == hashlib.sha256((official_dir / INDEX_FILE).read_bytes()).hexdigest()
    assert math.isnan(model.image_threshold) and meta["threshold"]["source"] == "none"
    assert meta["calibration"]["images"] == 0 and meta["calibration"]["method"] == "none"
    assert model.bank_source is None and model.training_files == []  # no provenance in an official index


def test_resize_override(official_dir: Path, r18_weights: Path) -> None:
    model = import_official(official_dir, weights=r18_weights, resize=80, device="cpu")
    assert model.config.resize == 80
    assert model.metadata["imported_from"]["resize_rule"] == "given"
    with pytest.raises(OfficialImportError, match="at least the crop"):
        import_official(official_dir, weights=r18_weights, resize=CROP - 1, device="cpu")


def test_refused_without_trust_pickle_and_pickle_never_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / PARAMS_FILE).write_bytes(pickle.dumps(_TouchOnLoad(marker), 5))
    (folder / INDEX_FILE).write_bytes(_faiss_bytes())
    out = tmp_path / "m.patchcore"
    rc, _, err = _run(["import-official", str(folder), "--output", str(out)], capsys)
    assert rc == 2
    line = _one_line_error(err)
    assert "--trust-pickle" in line and "pickle" in line and "run any code" in line
    assert not out.exists() and not marker.exists()


def test_malicious_pickle_refused_even_with_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    for name, data in _malicious_pickles(marker).items():
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        (folder / PARAMS_FILE).write_bytes(data)
        (folder / INDEX_FILE).write_bytes(_faiss_bytes())
        out = tmp_path / f"{folder.name}.patchcore"
        rc, _, err = _run(["import-official", str(folder), "--output", str(out), "--trust-pickle"], capsys)
        assert rc == 2, name
        assert "refused" in _one_line_error(err), name
        assert not out.exists() and not marker.exists(), name


def test_truncated_faiss_refused_by_cli(official_dir: Path, r18_weights: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / PARAMS_FILE).write_bytes((official_dir / PARAMS_FILE).read_bytes())
    data = (official_dir / INDEX_FILE).read_bytes()
    (folder / INDEX_FILE).write_bytes(data[: len(data) // 2])
    out = tmp_path / "m.patchcore"
    rc, _, err = _run(["import-official", str(folder), "--output", str(out), "--trust-pickle",
                       "--weights", str(r18_weights), "--device", "cpu"], capsys)
    assert rc == 2 and "truncated" in _one_line_error(err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"backbone.name": "densenet201"}, "not supported; importable: wideresnet50"),
        ({"backbone.name": None}, "not supported"),
        ({"patchstride": 2}, "patchstride must be an integer from 1 to 1"),
        ({"patchsize": 4}, "even"),
        ({"target_embed_dimension": 512}, "target_embed_dimension 512"),
        ({"input_shape": (3, 64, 48)}, "input_shape"),
        ({"input_shape": (3, 10**9, 10**9)}, "input_shape"),
        ({"layers_to_extract_from": ["layer9"]}, "not available for resnet18"),
        ({"anomaly_scorer_num_nn": 0}, "anomaly_scorer_num_nn"),
        ({"anomaly_scorer_num_nn": True}, "anomaly_scorer_num_nn"),
        ({"pretrain_embed_dimension": float("nan")}, "pretrain_embed_dimension"),
    ],
)
def test_unsupported_settings_are_clear_errors(tmp_path: Path, r18_weights: Path, changes: dict[str, Any],
                                               fragment: str) -> None:
    bank = np.random.default_rng(0).normal(size=(20, 1024)).astype(np.float32)
    folder = write_official(tmp_path / "m", bank, official_params(**changes))
    with pytest.raises(OfficialImportError) as ei:
        import_official(folder, weights=r18_weights, device="cpu")
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_missing_parts_and_ensembles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OfficialImportError, match="not a folder"):
        import_official(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OfficialImportError, match="no patchcore_params.pkl"):
        import_official(tmp_path / "empty")
    ens = tmp_path / "ens"
    ens.mkdir()
    (ens / f"Ensemble-1-3_{PARAMS_FILE}").write_bytes(pickle.dumps(official_params()))
    with pytest.raises(OfficialImportError, match="ensemble"):
        import_official(ens)
    only_params = tmp_path / "only"
    only_params.mkdir()
    (only_params / PARAMS_FILE).write_bytes(pickle.dumps(official_params()))
    rc, _, err = _run(["import-official", str(only_params), "--output", str(tmp_path / "o.patchcore"),
                       "--trust-pickle"], capsys)
    assert rc == 2 and "nnscorer_search_index.faiss not found" in _one_line_error(err)


def test_missing_weights_is_one_line(official_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    rc, _, err = _run(["import-official", str(official_dir), "--output", str(tmp_path / "o.patchcore"),
                       "--trust-pickle", "--device", "cpu"], capsys)
    assert rc == 2
    line = _one_line_error(err)
    assert "no ImageNet weights for resnet18" in line and "--weights" in line
