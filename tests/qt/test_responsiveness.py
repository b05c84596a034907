"""The event loop keeps running during a real run, and 100k results stay correct in the window."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer

from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_SCORE

#: Longest gap allowed between two 10 ms timer ticks during a run. The design target
#: is 100 ms; measured on the 2-core CI machine (torch using both cores beside the GUI
#: thread): see the report printed by the test. Kept at 250 ms so that a loaded CI
#: machine does not flake, while a blocking call in the GUI thread (a batch scored
#: there: ~200 ms per batch of 4, or a per-image row insert) still fails it.
MAX_STALL_MS = 250


def test_event_loop_never_stalls_during_a_run(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    w.show()
    w.open_model(qt_model_path)
    w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(4)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    run_to_end(w)
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert w.store is not None and w.store.count == 48
    worst_ms = max(gaps) * 1000
    print(f"\nevent-loop stall during a {elapsed:.2f} s run of 48 images: max {worst_ms:.1f} ms, "
          f"p99 {np.percentile(gaps, 99) * 1000:.1f} ms over {len(gaps)} ticks")
    assert len(gaps) > elapsed / 0.010 * 0.5  # the timer really ran throughout
    assert worst_ms < MAX_STALL_MS


def test_hundred_thousand_results_follow_the_threshold(window: MainWindow, synthetic: Callable) -> None:
    """Correctness at 100k rows through the whole window (timing: benchmarks/bench_gui_threshold.py)."""
    w = window
    n = 100_000
    image_set, scores, grids, errors = synthetic(n)
    w.image_set = image_set
    w._reset_results()
    st = w.store
    assert st is not None
    for start in range(0, n, 10_000):
        sl = slice(start, start + 10_000)
        st.add(np.arange(n)[sl], scores[sl], grids[sl], errors[sl])
        w._flush()
    assert w.table_model.rowCount() == n
    w.results.view.sortByColumn(COL_SCORE, w.results.view.horizontalHeader().sortIndicatorOrder())
    w.results.set_filter("ng")
    labels = st.labels
    for t in (2.0, 5.0, 8.5):
        w.set_threshold(t)
        ng = int(np.sum(scores > t))
        assert w.threshold_panel.ng_label.text() == f"NG {ng:,}"
        assert w.table_model.rowCount() == ng
        fp = int(np.sum((scores > t) & (labels == 0)))
        assert w.metrics_panel.confusion["fp"] == fp
        assert w.threshold_panel.slider.value() == w.threshold_panel.scale.to_slider(t)
