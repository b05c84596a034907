"""Precision names (exact / fast / half, old fp32 / bf16 aliases), half's native-CPU check,
and the resolved name recorded in model files, run files and reports (issue 10, points 7-8)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from patchcore_gui.core import precision as prec
from patchcore_gui.core.datasets import scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import RunFile

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)
#: Largest relative image-score difference half may show against exact on the tiny test model
#: (measured 4.0 % on this 64 px model; real sets: docs/performance.md, "Half precision").
HALF_SCORE_RTOL = 0.08


@pytest.fixture
def native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this CPU runs bfloat16 natively (where it does not, torch emulates it: same numbers)."""
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)


@pytest.fixture
def no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)


def _test_paths(image_dirs: dict[str, Path]) -> list[str]:
    return sorted(str(p) for p in image_dirs["test"].glob("*.png"))


def test_old_names_map_to_the_new_ones_and_auto_resolves_per_device(native_bf16: None) -> None:
    assert prec.canonical_precision("fp32") == "exact"
    assert prec.canonical_precision("bf16") == "fast"
    assert [prec.canonical_precision(p) for p in ("auto", "exact", "fast", "half")] == ["auto", "exact", "fast", "half"]
    assert prec.resolve_precision("fp32", CUDA) == "exact"
    assert prec.resolve_precision("bf16", CPU) == "fast"
    assert prec.resolve_precision("auto", CPU) == "exact"
    assert prec.resolve_precision("auto", CUDA) == "fast"
    assert prec.resolve_precision("half", CPU) == "half"
    for bad in ("fp16", "bfloat16", "HALF", ""):
        with pytest.raises(ValueError, match="unknown precision"):
            prec.resolve_precision(bad, CPU)
    # What is written is always the resolved name; old files' names read as the new ones.
    assert [prec.recorded_precision(v) for v in ("fp32", "bf16", "exact", "fast", "half")] == [
        "exact", "fast", "exact", "fast", "half"]
    assert prec.recorded_precision(None) == "" and prec.recorded_precision("auto") == ""


def test_backbone_dtype_per_mode_and_device() -> None:
    assert prec.backbone_dtype("exact", CPU) is None and prec.backbone_dtype("exact", CUDA) is None
    assert prec.backbone_dtype("fast", CPU) is None  # the CPU's fast path keeps float32
    assert prec.backbone_dtype("fast", CUDA) is torch.float16
    assert prec.backbone_dtype("half", CPU) is torch.bfloat16
    assert prec.backbone_dtype("half", CUDA) is torch.float16


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr(prec, "CPUINFO", info)
    base = "processor\t: 0\nmodel name\t: Some CPU with avx512_bf16 in its name\nflags\t\t: fpu sse2 avx2 avx512f {}\n\n"
    cases = {"": False, "avx512_bf16": True, "amx_tile amx_bf16": True, "avx512_fp16": False, "amx_tile": False}
    for extra, want in cases.items():
        info.write_text(base.format(extra))
        prec.cpu_has_native_bf16.cache_clear()
        assert prec.cpu_has_native_bf16() is want, extra
    info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")  # arm64
    prec.cpu_has_native_bf16.cache_clear()
    assert prec.cpu_has_native_bf16() is True
    info.unlink()  # unreadable: refuse rather than risk an emulated, slower half
    prec.cpu_has_native_bf16.cache_clear()
    assert prec.cpu_has_native_bf16() is False
    prec.cpu_has_native_bf16.cache_clear()


def test_half_is_refused_on_a_cpu_without_native_bf16(tiny_model_path: Path, image_dirs: dict[str, Path],
                                                      no_native_bf16: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(prec.PrecisionUnsupportedError, match="native bfloat16"):
        prec.resolve_precision("half", CPU)
    assert prec.resolve_precision("half", CUDA) == "half"  # float16 on CUDA needs no CPU flag
    assert prec.half_unsupported_reason(CUDA) is None
    with pytest.raises(prec.PrecisionUnsupportedError, match="native bfloat16"):
        PatchCoreModel.load(tiny_model_path, device="cpu", precision="half")  # not a ModelFileError
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    with pytest.raises(prec.PrecisionUnsupportedError):
        m.set_precision("half")
    assert m.precision == "exact"  # unchanged by the refused switch
    from patchcore_gui.cli import main

    for argv in (["predict", "--model", str(tiny_model_path), "--images", str(image_dirs["test"])],
                 ["train", "--images", str(image_dirs["train"]), "--output", str(image_dirs["root"] / "x.patchcore"),
                  "--backbone", "efficientnet_lite0"]):
        assert main([*argv, "--precision", "half", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("patchcore: error: half precision needs a CPU with native bfloat16")
    assert not (image_dirs["root"] / "x.patchcore").exists()


def test_half_scores_stay_near_exact(tiny_model_path: Path, image_dirs: dict[str, Path], native_bf16: None) -> None:
    paths = _test_paths(image_dirs)
    exact = PatchCoreModel.load(tiny_model_path, device="cpu", precision="exact")
    half = PatchCoreModel.load(tiny_model_path, device="cpu", precision="half")
    assert half.precision == "half" and half.requested_precision == "half"
    assert half._half_dtype is torch.bfloat16 and half.search.backend.startswith("reduced")
    s_exact = np.asarray(exact.predict(paths)[0])
    s_half = np.asarray(half.predict(paths)[0])
    rel = np.abs(s_half - s_exact) / s_exact
    assert rel.max() < HALF_SCORE_RTOL
    assert rel.max() > 1e-5  # the backbone really ran in bfloat16, not float32
    # Ranking is what detection needs: the defect images still score above the good ones.
    bad = np.array(["bad" in Path(p).name for p in paths])
    assert s_half[bad].min() > s_half[~bad].max()
    half.set_precision("exact")  # and back: the exact path, bit for bit
    np.testing.assert_array_equal(half.predict(paths)[0], s_exact)


def test_training_records_the_resolved_name(tiny_model_path: Path) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    assert m.metadata["precision"] == "exact"  # trained with auto on the CPU: never "fp32"


def test_runs_record_the_resolved_name_and_old_run_files_still_resume(
        tiny_model_path: Path, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    from patchcore_gui.cli import main
    from patchcore_gui.reports.context import build_context

    iset = scan_folder(image_dirs["test"])
    fast = PatchCoreModel.load(tiny_model_path, device="cpu", precision="bf16")  # old name asked for
    run = tmp_path / "new.pcrun"
    predict_into_run(fast, iset, run, batch_size=2)
    assert _raw_settings(run)["precision"] == "fast"
    assert ("Precision", "fast (reduced search, exact float32 re-scoring; scores within 1 % of exact)") in \
        build_context(run).facts_run()

    # An old run file (written before the rename) says "bf16": it opens, reads as fast,
    # its report says fast, and it resumes on the fast path with the stored scores.
    cancel = threading.Event()
    old = tmp_path / "old.pcrun"
    predict_into_run(fast, iset, old, batch_size=2, cancel=cancel, on_batch=lambda r: cancel.set())
    _set_raw_precision(old, "bf16")
    with RunFile.open(old, readonly=True) as ro:
        assert ro.settings["precision"] == "fast"
    assert dict(build_context(old).facts_run())["Precision"].startswith("fast (")
    exact = PatchCoreModel.load(tiny_model_path, device="cpu")
    with pytest.raises(ValueError, match="precision fast"):
        predict_into_run(exact, None, old, resume=True)
    assert main(["predict", "--run", str(old), "--resume", "--quiet"]) == 0
    with RunFile.open(old, readonly=True) as a, RunFile.open(run, readonly=True) as b:
        assert np.array_equal(a.columns()["score"], b.columns()["score"])

    # An old exact run ("fp32") resumes on the exact path.
    old32 = tmp_path / "old32.pcrun"
    cancel.clear()
    predict_into_run(exact, iset, old32, batch_size=2, cancel=cancel, on_batch=lambda r: cancel.set())
    _set_raw_precision(old32, "fp32")
    out = predict_into_run(exact, None, old32, resume=True)
    assert out.status == "finished"
    assert dict(build_context(old32).facts_run())["Precision"].startswith("exact (")


def test_run_settings_never_store_an_alias(tiny_model_path: Path, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    m = PatchCoreModel.load(tiny_model_path, device="cpu")
    iset = scan_folder(image_dirs["test"])
    RunFile.create(tmp_path / "a.pcrun", m, iset, {"batch_size": 2, "precision": "fp32"}).close()
    assert _raw_settings(tmp_path / "a.pcrun")["precision"] == "exact"
    with pytest.raises(ValueError, match="precision"):
        RunFile.create(tmp_path / "b.pcrun", m, iset, {"batch_size": 2, "precision": "auto"})


def _raw_settings(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
    return json.loads(value)


def _set_raw_precision(path: Path, name: str) -> None:
    st = _raw_settings(path)
    st["precision"] = name
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(st),))
