"""How long a threshold move takes in the window with 100k results (target: < 50 ms).

Builds the real MainWindow offscreen, fills it with synthetic scores (with labels, so
the ROC / confusion panel is live too), then moves the threshold the way a user does:
through the slider, with the table showing all rows, then only NG rows and only false
positives (the filter changes the row set on every move), sorted by score. Prints
milliseconds per move: the update itself (verdicts, counts, table, metrics, overlay)
and the update plus the repaint of the widgets it changed.

    .venv/bin/python benchmarks/bench_gui_threshold.py [--rows 100000] [--moves 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def synthetic(n: int, seed: int = 0) -> tuple[object, np.ndarray, np.ndarray, list[str]]:
    from patchcore_gui.core.datasets import ImageSet

    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int8)
    labels[::7] = 1
    scores = rng.gamma(4.0, 1.0, n).astype(np.float32) + labels * 6.0
    errors = [""] * n
    for i in range(3, n, 97):
        errors[i] = "not a recognised image format"
        scores[i] = np.nan
    root = Path("/nonexistent/bench")
    image_set = ImageSet(
        root=root,
        paths=[root / ("bad" if lab else "good") / f"img_{i:06d}.png" for i, lab in enumerate(labels)],
        labels=labels,
        mask_paths=[None] * n,
        defect_types=["crack" if lab else "good" for lab in labels],
        layout="mvtec",
    )
    return image_set, scores, np.zeros((n, 28, 28), dtype=np.float16), errors


def timed_moves(app: QApplication, window: object, values: np.ndarray) -> tuple[list[float], list[float]]:
    """Per slider move: ms until verdicts, counts, table, metrics and overlay are updated,
    and ms until the changed widgets are also repainted (the next event-loop pass)."""
    logic, total = [], []
    panel = window.threshold_panel  # type: ignore[attr-defined]
    for v in values:
        t0 = time.perf_counter()
        panel.slider.setValue(panel.scale.to_slider(float(v)))
        t1 = time.perf_counter()
        app.processEvents()  # paints what changed, as the event loop would
        t2 = time.perf_counter()
        logic.append((t1 - t0) * 1000)
        total.append((t2 - t0) * 1000)
    return logic, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--moves", type=int, default=40)
    args = p.parse_args(argv)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from patchcore_gui.qt.main_window import MainWindow
    from patchcore_gui.qt.results_model import COL_SCORE
    from patchcore_gui.qt.settings import AppSettings
    from patchcore_gui.qt.style import apply_style

    apply_style(app)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        w = MainWindow(AppSettings(Path(tmp) / "bench.ini"))
        w.resize(1500, 900)
        w.show()
        app.processEvents()
        n = args.rows
        image_set, scores, grids, errors = synthetic(n)
        t0 = time.perf_counter()
        w.image_set = image_set
        w._reset_results()
        st = w.store
        chunk = 5000
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            st.add(np.arange(n)[sl], scores[sl], grids[sl], errors[sl])
            w.table_model.publish()
        w._flush()
        app.processEvents()
        print(f"{n:,} rows: store + {n // chunk} chunked inserts + plots: {(time.perf_counter() - t0) * 1000:.0f} ms")
        t0 = time.perf_counter()
        w.results.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
        app.processEvents()
        print(f"sort by score (numpy argsort + layoutChanged): {(time.perf_counter() - t0) * 1000:.1f} ms")

        lo, hi = np.nanpercentile(scores, [5, 95])
        values = np.linspace(lo, hi, args.moves)
        for kind in ("all", "ng", "fp"):
            w.results.set_filter(kind)
            app.processEvents()
            logic, total = timed_moves(app, w, values)
            print(f"threshold move, filter {kind:>3}: update median {statistics.median(logic):5.1f} ms "
                  f"(max {max(logic):5.1f}); with repaint median {statistics.median(total):5.1f} ms, "
                  f"p90 {np.percentile(total, 90):5.1f}, max {max(total):5.1f}  ({len(total)} moves)")
        w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
