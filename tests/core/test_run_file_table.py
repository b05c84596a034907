"""RunFile.table(): a run file's images and results in one pass, paths kept as strings.

What the window opens a run file with (issue 15 point 5): the same values the per-column
readers give, ``ImageSet.paths`` a ``PathList`` (a ``Path`` only per item asked), and a
bounded number of garbage-collector-tracked objects however many rows the file has.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pytest

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.path_list import OptionalPathList, PathList
from patchcore_gui.core.result_table import ResultTable
from patchcore_gui.core.results import BatchResult
from patchcore_gui.core.run_file import RunFile

SETTINGS = {"device": "cpu", "batch_size": 8, "num_workers": 0, "precision": "exact"}


class StubModel:
    """What ``RunFile.create`` reads of a model (no model file: a run opened elsewhere)."""

    path = None
    metadata: dict[str, Any] = {"backbone": "stub"}
    threshold_info = {"source": "test", "rule": "fixed"}
    image_threshold = 5.0
    pixel_threshold = float("nan")
    review_from = float("nan")
    precision = "exact"

    def summary(self) -> dict[str, Any]:
        return {"backbone": "stub"}


def _batch(idx: list[int], paths: list[str], scores: list[float], errors: list[str]) -> BatchResult:
    s = np.array([np.nan if e else v for v, e in zip(scores, errors, strict=True)], dtype=np.float32)
    grids = np.ones((len(idx), 2, 2), dtype=np.float16)
    return BatchResult(indices=np.array(idx, dtype=np.int64), paths=[paths[i] for i in idx], scores=s,
                       grids=grids, errors=errors, labels=np.full(len(idx), -1, dtype=np.int8))


def test_table_gives_what_the_column_readers_give(tmp_path: Path) -> None:
    root = tmp_path / "line"
    odd = os.path.join(os.fsencode(root), b"good", b"caf\xe9_\xff.png")  # not UTF-8: survives as bytes
    paths = [root / "loose.png", root / "good" / "a.png", Path(os.fsdecode(odd)),
             root / "crack" / "b.png", root / "crack" / "c.png", root / "scratch" / "d.png", root / "e.png"]
    mask_b = tmp_path / "gt" / "crack" / "b_mask.png"
    mask_d = tmp_path / "gt" / "scratch" / "d_mask.png"
    iset = ImageSet(root=root, paths=paths, labels=np.array([-1, 0, 0, 1, 1, 1, -1], dtype=np.int8),
                    mask_paths=[None, None, None, mask_b, None, mask_d, None],
                    defect_types=["", "good", "good", "crack", "crack", "scratch", ""], layout="mvtec")
    run = tmp_path / "r.pcrun"
    with RunFile.create(run, StubModel(), iset, SETTINGS) as st:  # type: ignore[arg-type]
        sp = st.paths()
        st.add_batch(_batch([4, 0, 2], sp, [9.5, 1.25, 3.0], ["", "", "cannot read image: truncated"]))
        st.add_batch(_batch([1, 3], sp, [0.5, 7.75], ["", ""]))
        st.set_operator_verdict(3, "NG", operator="ana")
        st.set_operator_verdict(1, "OK", operator="ana")
        t = st.table()
        cols, errors = st.columns(), st.errors()

    got = t.image_set
    assert isinstance(got.paths, PathList) and isinstance(got.mask_paths, OptionalPathList)
    assert list(got.paths) == [Path(os.path.abspath(p)) for p in paths]
    assert os.fsencode(got.paths[2]) == odd
    assert got.paths.strings == sp
    assert got.labels.tolist() == [-1, 0, 0, 1, 1, 1, -1]
    assert got.defect_types == ["", "good", "good", "crack", "crack", "scratch", ""]
    assert list(got.mask_paths) == [None, None, None, mask_b, None, mask_d, None] and got.mask_count == 2
    assert (got.layout, got.root) == ("mvtec", root.resolve())
    assert t.done.tolist() == [True, True, True, True, True, False, False] == cols["done"].tolist()
    assert np.array_equal(t.score, cols["score"], equal_nan=True) and t.score.dtype == np.float32
    np.testing.assert_array_equal(t.score[[0, 1, 3, 4]], np.array([1.25, 0.5, 7.75, 9.5], dtype=np.float32))
    assert np.isnan(t.score[[2, 5, 6]]).all()
    assert t.operator.tolist() == [0, 1, 0, 2, 0, 0, 0] == cols["operator"].tolist()
    assert t.errors == errors == {2: "cannot read image: truncated"}


def test_an_empty_run_file_reads_as_an_empty_table(tmp_path: Path) -> None:
    iset = ImageSet(root=tmp_path, paths=[], labels=np.empty(0, np.int8), mask_paths=[], defect_types=[],
                    layout="folder")
    with RunFile.create(tmp_path / "empty.pcrun", StubModel(), iset, SETTINGS) as st:  # type: ignore[arg-type]
        t = st.table()
    assert len(t.image_set) == 0 and t.done.shape == t.score.shape == t.operator.shape == (0,)
    assert t.errors == {}


ROWS = 200_000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200,000-row run file, every row scored, every 97th an error."""
    folder = tmp_path_factory.mktemp("big")
    # Strings, not Paths, to write it quickly (ImageSet only needs path-likes to write).
    strings = [os.path.join(str(folder), "good" if i % 7 else "crack", f"img_{i:06d}.png") for i in range(ROWS)]
    labels = np.array([0 if i % 7 else 1 for i in range(ROWS)], dtype=np.int8)
    iset = ImageSet(root=folder, paths=strings, labels=labels, mask_paths=[None] * ROWS,  # type: ignore[arg-type]
                    defect_types=["good" if i % 7 else "crack" for i in range(ROWS)], layout="mvtec")
    run = folder / "big.pcrun"
    with RunFile.create(run, StubModel(), iset, SETTINGS) as st:  # type: ignore[arg-type]
        errors = ["not an image" if i % 97 == 3 else "" for i in range(ROWS)]
        st.add_batch(_batch(list(range(ROWS)), strings, list(np.linspace(0, 10, ROWS)), errors))
        st.set_status("finished")
    return run


def test_a_large_run_opens_without_a_path_or_a_tracked_object_per_row(big_run: Path) -> None:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # nothing collected mid-count: what is alive afterwards was made and kept
    try:
        before = len(gc.get_objects())
        paths_before = sum(isinstance(o, PurePath) for o in gc.get_objects())
        with RunFile.open(big_run, readonly=True) as rf:
            table = rf.table()
        results = ResultTable(table.image_set)
        results.restore(table.done, table.score, table.errors, table.operator, ())
        alive = gc.get_objects()
        grown = len(alive) - before
        paths_made = sum(isinstance(o, PurePath) for o in alive) - paths_before
        del alive
    finally:
        if enabled:
            gc.enable()
    # A Path per image (and its parts list) made the heap grow by > 2 x ROWS
    # before; now the paths are one untracked str each and the rest numpy columns.
    assert paths_made <= 4  # the run file's own and its folder's, never one per image
    assert grown < ROWS // 100, f"{grown} tracked objects for {ROWS} rows"
    # The paths are still there, as Path objects where asked for.
    assert len(results.image_set.paths) == ROWS
    p = results.image_set.paths[12_345]
    assert isinstance(p, Path) and p.name == "img_012345.png" and p.parent.name == "good"
    assert results.names[14] == "crack/img_000014.png"
    assert results.count == ROWS and len(results.errors) == len(range(3, ROWS, 97))
    assert int(np.count_nonzero(results.labels == 1)) == len(range(0, ROWS, 7))
