"""A cluster run's file opens in the window like any other (issue 15 point 5), at 20k rows.

The run file is written by ``benchmarks/bench_million_rows.py``'s writer (the Ray
driver's way: create, then ``add_batch`` blocks arriving out of order), so the test and
the 1,000,000-row benchmark share one code path; timings are the benchmark's business.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_gui_threshold import synthetic  # noqa: E402
from bench_million_rows import grid_blob, write_run_file  # noqa: E402

from patchcore_gui.core.path_list import PathList  # noqa: E402
from patchcore_gui.core.run_file import RunFile  # noqa: E402
from patchcore_gui.qt import gc_freeze  # noqa: E402
from patchcore_gui.qt.results_model import COL_SCORE  # noqa: E402

ROWS = 20_000
GRID = 12


def test_a_synthetic_cluster_run_opens_sorts_filters_and_moves_the_threshold(window: object, tmp_path: Path) -> None:
    path = tmp_path / "cluster.pcrun"
    write_run_file(path, ROWS, grid=GRID, seed=4)
    _, scores, _, errors = synthetic(ROWS, 4)
    scores = scores.astype(np.float32)  # the run file's score column
    with RunFile.open(path, readonly=True) as rf:
        assert rf.batch_count() == 2 and rf.status == "finished"  # two blocks of 10,000
        threshold = rf.image_threshold

    w = window
    assert w.open_run(path), w.last_error
    st = w.store
    assert st.count == st.size == ROWS and w.table_model.rowCount() == ROWS
    assert np.array_equal(st.scores, scores, equal_nan=True)
    n_err = sum(1 for e in errors if e)
    assert len(st.errors) == n_err > 0
    # Grids are read from the file when an image is shown (the writer's blob scaled by the
    # score), not held: a million rows' would be 1.5 GB.
    top = int(np.nanargmax(scores))
    assert st.grids is None
    assert np.array_equal(st.grid(top), (grid_blob(GRID) * scores[top]).astype(np.float16).astype(np.float32))
    assert st.grid(next(iter(st.errors))) is None
    assert w.results.select_image(top)  # the window asks the store for the grid it shows
    assert w.threshold == threshold

    w.results.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert w.table_model.image_at(0) == top

    w.results.set_filter("ng")
    assert w.table_model.rowCount() == int(np.sum(scores > threshold))
    lower = float(np.nanpercentile(scores, 50))
    w.set_threshold(lower)
    assert w.table_model.rowCount() == int(np.sum(scores > lower))  # the NG filter follows the move
    w.results.set_filter("errors")
    assert w.table_model.rowCount() == n_err


def test_opening_a_run_keeps_no_python_object_per_row(window: object, tmp_path: Path) -> None:
    """The rows of an opened run are numpy columns and one path string each: the objects the
    collector tracks (and ``gc_freeze`` freezes) do not grow with the run. A ``Path`` per
    image and its parts list were > 2 per row (2.4 M frozen objects at 1,000,000 rows)."""
    small, big = tmp_path / "small.pcrun", tmp_path / "big.pcrun"
    write_run_file(small, 1_000, grid=4, seed=1)
    write_run_file(big, 21_000, grid=4, seed=2)
    w = window
    assert w.open_run(small), w.last_error
    frozen_small = gc_freeze.frozen_objects()
    assert w.open_run(big), w.last_error
    frozen_big = gc_freeze.frozen_objects()
    assert w.store.count == 21_000
    assert isinstance(w.doc.image_set.paths, PathList)
    per_row = (frozen_big - frozen_small) / 20_000
    assert per_row < 0.05, f"{frozen_big - frozen_small} more frozen objects for 20,000 more rows"
    # The paths are there all the same: the image pane gets a Path for the row shown.
    assert w.doc.image_set.paths[20_999] == Path("/nonexistent/bench/good/img_020999.png")
