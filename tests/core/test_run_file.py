"""The run file: batches, resume bookkeeping, threshold log, verdicts, locking, odd paths."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.datasets import ImageSet, scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.results import BatchResult
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import (
    ModelChangedError,
    RunFile,
    RunFileError,
    RunLockedError,
    file_sha256,
)

SETTINGS = {"device": "cpu", "batch_size": 2, "num_workers": 0}


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> PatchCoreModel:
    return PatchCoreModel.load(tiny_model_path, device="cpu")


def _image_set(paths: list[Path], labels: list[int] | None = None) -> ImageSet:
    n = len(paths)
    return ImageSet(root=paths[0].parent, paths=paths,
                    labels=np.array(labels if labels is not None else [-1] * n, dtype=np.int8),
                    mask_paths=[None] * n, defect_types=[""] * n, layout="folder")


def _batch(idx: list[int], paths: list[str], scores: list[float], errors: list[str] | None = None) -> BatchResult:
    b = len(idx)
    grids = np.arange(b * 12, dtype=np.float32).reshape(b, 3, 4).astype(np.float16) + 0.5
    errs = errors or [""] * b
    s = np.array(scores, dtype=np.float32)
    for j, e in enumerate(errs):
        if e:
            s[j] = np.nan
            grids[j] = np.nan
    return BatchResult(indices=np.array(idx, dtype=np.int64), paths=[paths[i] for i in idx], scores=s,
                       grids=grids, errors=errs, labels=np.full(b, -1, dtype=np.int8))


def test_batches_columns_grids_and_status(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    paths = sorted(image_dirs["test"].glob("*.png"))
    iset = _image_set(paths, [0, 0, 0, 1, 1, 1])
    run = tmp_path / "r.sqlite"
    with RunFile.create(run, model, iset, SETTINGS) as st:
        assert st.status == "running"
        assert st.meta["model_sha256"] == file_sha256(model.path)
        assert st.meta["settings"]["batch_size"] == 2
        assert st.image_threshold == pytest.approx(model.image_threshold)
        sp = st.paths()
        st.add_batch(_batch([0, 1], sp, [1.25, 3.5]))
        st.add_batch(_batch([2, 3], sp, [0.0, 9.0], errors=["", "cannot read image: truncated"]))
        assert st.batch_count() == 2
        assert st.done_indices().tolist() == [0, 1, 2, 3]
        cols = st.columns()
        assert cols["done"].tolist() == [True, True, True, True, False, False]
        np.testing.assert_array_equal(cols["score"][:3], np.array([1.25, 3.5, 0.0], dtype=np.float32))
        assert np.isnan(cols["score"][3:]).all()
        assert cols["error"].tolist() == [False, False, False, True, False, False]
        assert cols["label"].tolist() == [0, 0, 0, 1, 1, 1]
        assert cols["size"][0] == paths[0].stat().st_size and cols["size"][5] == -1
        assert cols["mtime_ns"][0] == paths[0].stat().st_mtime_ns
        assert st.errors() == {3: "cannot read image: truncated"}
        g = st.grid(1)
        assert g is not None and g.dtype == np.float16 and g.shape == (3, 4) and float(g[0, 0]) == 12.5
        assert st.grid(3) is None and st.grid(5) is None
        assert [i for i, gg in st.iter_grids([5, 0, 3]) if gg is not None] == [0]
        st.set_status("finished")
        with pytest.raises(ValueError):
            st.set_status("exploded")
    with RunFile.open(run, readonly=True) as ro:
        assert ro.status == "finished"
        assert ro.image_set().paths == [Path(os.path.abspath(p)) for p in paths]
        assert ro.image_set().labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]  # one file at rest


def test_threshold_log_and_operator_verdicts(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    iset = _image_set(sorted(image_dirs["test"].glob("*.png")))
    with RunFile.create(tmp_path / "r.sqlite", model, iset, SETTINGS) as st:
        t0 = st.image_threshold
        st.set_threshold(5.0, note="line 3 trial")
        st.log_threshold(5.0, 7.5, note="slider")
        st.set_threshold(2.0, kind="pixel")
        log = st.threshold_log()
        assert [(c.kind, c.new, c.note) for c in log] == [("image", 5.0, "line 3 trial"), ("image", 7.5, "slider"),
                                                           ("pixel", 2.0, "")]
        assert log[0].old == pytest.approx(t0) and log[1].old == 5.0 and log[0].time
        assert st.image_threshold == 7.5 and st.pixel_threshold == 2.0
        st.set_operator_verdict(2, "NG", operator="ana")
        st.set_operator_verdict(4, "OK")
        st.set_operator_verdict(4, "")
        with pytest.raises(ValueError):
            st.set_operator_verdict(1, "maybe")
        with pytest.raises(IndexError):
            st.set_operator_verdict(99, "OK")
        assert st.columns()["operator"].tolist() == [0, 0, 2, 0, 0, 0]
        v = st.operator_verdicts()
        assert list(v) == [2] and v[2][0] == "NG" and v[2][1] and v[2][2] == "ana"
    with RunFile.open(tmp_path / "r.sqlite", readonly=True) as ro:  # persisted
        assert len(ro.threshold_log()) == 3 and ro.image_threshold == 7.5


def test_second_writer_refused_reader_allowed(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "r.sqlite"
    st = RunFile.create(run, model, _image_set(sorted(image_dirs["test"].glob("*.png"))), SETTINGS)
    try:
        with pytest.raises(RunLockedError, match="open for writing in another window/process"):
            RunFile.open(run)
        st.add_batch(_batch([0, 1], st.paths(), [1.0, 2.0]))
        with RunFile.open(run, readonly=True) as ro:
            assert ro.done_indices().tolist() == [0, 1]  # sees committed batches while the writer works
            with pytest.raises(RunFileError, match="read-only"):
                ro.set_operator_verdict(0, "OK")
            st.add_batch(_batch([2, 3], st.paths(), [1.0, 2.0]))  # a reader does not block the writer
            assert ro.done_indices().tolist() == [0, 1, 2, 3]
    finally:
        st.close()
    with RunFile.open(run) as again:  # released on close
        assert len(again.done_indices()) == 4


def test_create_refuses_existing_and_open_refuses_foreign(model: PatchCoreModel, image_dirs: dict[str, Path],
                                                          tmp_path: Path) -> None:
    run = tmp_path / "r.sqlite"
    RunFile.create(run, model, _image_set(sorted(image_dirs["test"].glob("*.png"))), SETTINGS).close()
    with pytest.raises(RunFileError, match="already exists"):
        RunFile.create(run, model, _image_set(sorted(image_dirs["test"].glob("*.png"))), SETTINGS)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(RunFileError, match="not a run file"):
        RunFile.open(junk, readonly=True)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(RunFileError, match="not a PatchCore Inspector run file"):
        RunFile.open(other)
    with pytest.raises(RunFileError, match="not found"):
        RunFile.open(tmp_path / "missing.sqlite")


def test_non_utf8_path_round_trip(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"caf\xe9_\xff.png")  # Latin-1 bytes: not valid UTF-8
    try:
        with open(odd, "wb") as fh:
            fh.write((image_dirs["test"] / "a_good_0.png").read_bytes())
    except OSError:
        pytest.skip("file system refuses non-UTF-8 names")
    name = os.fsdecode(odd)
    good = folder / "plain.png"
    good.write_bytes((image_dirs["test"] / "a_good_1.png").read_bytes())
    iset = scan_folder(folder)
    assert name in [str(p) for p in iset.paths]
    run = tmp_path / "odd.sqlite"
    outcome = predict_into_run(model, iset, run, batch_size=2)
    assert outcome.status == "finished" and outcome.done == 2
    with RunFile.open(run, readonly=True) as ro:
        assert ro.paths() == [str(p) for p in iset.paths]
        assert os.fsencode(ro.paths()[iset.paths.index(Path(name))]) == odd
        assert any("\ufffd" in d for d in ro.display_names())
        assert not ro.errors()  # the odd file was found and scored
        assert np.isfinite(ro.columns()["score"]).all()


def test_cancel_then_resume_in_process_matches(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    iset = scan_folder(image_dirs["test"])
    full = tmp_path / "full.sqlite"
    assert predict_into_run(model, iset, full, batch_size=2).status == "finished"
    cancel = threading.Event()
    part = tmp_path / "part.sqlite"
    out = predict_into_run(model, iset, part, batch_size=2, cancel=cancel, on_batch=lambda r: cancel.set())
    assert (out.status, out.done) == ("cancelled", 2)
    with pytest.raises(ValueError, match="batches of 2"):
        predict_into_run(model, None, part, resume=True, batch_size=3)
    seen: list[int] = []
    out2 = predict_into_run(model, None, part, resume=True, on_batch=lambda r: seen.extend(r.indices.tolist()))
    assert (out2.status, out2.scored_now, out2.done) == ("finished", 4, 6)
    assert seen == [2, 3, 4, 5]  # only the images not yet done
    with RunFile.open(full, readonly=True) as a, RunFile.open(part, readonly=True) as b:
        assert np.array_equal(a.columns()["score"], b.columns()["score"])
        assert [s.get("resume") for s in b.meta["sessions"]] == [False, True]
        assert b.batch_count() == 3


def test_resume_keeps_the_runs_precision(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    """A run scored on the fast path resumes only on the fast path (the CLI picks it up from
    the run when --precision is not given), so resumed scores match the ones stored."""
    fast = PatchCoreModel.load(model.path, device="cpu", precision="bf16")
    iset = scan_folder(image_dirs["test"])
    cancel = threading.Event()
    part = tmp_path / "fast.sqlite"
    predict_into_run(fast, iset, part, batch_size=2, cancel=cancel, on_batch=lambda r: cancel.set())
    with RunFile.open(part, readonly=True) as ro:
        assert ro.settings["precision"] == "fast"  # the resolved name, not the alias asked for
    with pytest.raises(ValueError, match="precision fast"):
        predict_into_run(model, None, part, resume=True)  # the exact model
    from patchcore_gui.cli import main

    assert main(["predict", "--run", str(part), "--resume", "--quiet"]) == 0
    full = tmp_path / "full.sqlite"
    predict_into_run(fast, iset, full, batch_size=2)
    with RunFile.open(full, readonly=True) as a, RunFile.open(part, readonly=True) as b:
        assert b.status == "finished"
        assert np.array_equal(a.columns()["score"], b.columns()["score"])


def test_resume_refuses_changed_model(model: PatchCoreModel, image_dirs: dict[str, Path], tmp_path: Path) -> None:
    mpath = tmp_path / "m.patchcore"
    mpath.write_bytes(Path(model.path).read_bytes())
    m = PatchCoreModel.load(mpath, device="cpu")
    run = tmp_path / "r.sqlite"
    cancel = threading.Event()
    cancel.set()  # nothing scored: only the run's bookkeeping matters here
    predict_into_run(m, scan_folder(image_dirs["test"]), run, batch_size=2, cancel=cancel)
    m.with_threshold(1.0, note="changed").save(mpath)
    with pytest.raises(ModelChangedError, match="has changed since the run started"):
        predict_into_run(PatchCoreModel.load(mpath, device="cpu"), None, run, resume=True)
    with RunFile.open(run, readonly=True) as ro:
        assert ro.status == "cancelled"  # untouched by the refused resume


def test_cli_predict_run_keeps_csv_and_refuses_misuse(tiny_model_path: Path, image_dirs: dict[str, Path],
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.cli import main

    base = ["predict", "--model", str(tiny_model_path), "--images", str(image_dirs["test"]), "--quiet"]
    assert main([*base, "--output", str(tmp_path / "plain.csv")]) == 0
    run = tmp_path / "r.sqlite"
    assert main([*base, "--output", str(tmp_path / "run.csv"), "--run", str(run)]) == 0
    assert (tmp_path / "run.csv").read_text() == (tmp_path / "plain.csv").read_text()  # CSV unchanged
    with RunFile.open(run, readonly=True) as ro:
        assert ro.status == "finished" and not ro.interrupted and ro.settings["batch_size"] == 8
    capsys.readouterr()
    assert main([*base, "--run", str(run)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["predict", "--resume", "--quiet"]) == 2
    assert "--resume needs --run" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "--resume", "--images", str(image_dirs["test"])]) == 2
    assert "comes from the run file" in capsys.readouterr().err
    with RunFile.open(run):  # a writer elsewhere in this process: the CLI is refused
        assert main(["predict", "--run", str(run), "--resume", "--quiet"]) == 2
        assert "open for writing in another window/process" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "--resume", "--quiet", "--output", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_text().splitlines()[1:] == [
        ln.replace(str(image_dirs["test"]), os.path.abspath(image_dirs["test"]), 1)
        for ln in (tmp_path / "plain.csv").read_text().splitlines()[1:]
    ]
