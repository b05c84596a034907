"""The event loop keeps running during a real run, and 100k results stay correct in the window."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer

from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.results_model import COL_SCORE

#: The event loop during a real run, measured with a 10 ms QTimer, two ways:
#:
#: * GUI-thread CPU time between two ticks: the work our code does in one pass of the
#:   loop (painting included). The design target, 100 ms, is asserted on this; measured
#:   38-59 ms on the 2-core machine.
#: * Wall-clock gap between two ticks: adds time spent waiting for a core or for the
#:   GIL while torch and other processes use the CPU. Measured 60-300 ms on the shared
#:   2-core machine (others' jobs kept its load at 2-3.5), median 10.2 ms. Asserted at
#:   400 ms: it still fails if scoring ever ran on the GUI thread (the loop would stop
#:   for the whole 1-2 s run), without flaking on a busy CI machine.
MAX_GUI_WORK_MS = 100
MAX_STALL_MS = 400


def test_event_loop_never_stalls_during_a_run(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    w.open_model(qt_model_path)
    w.open_folder(qt_data["many"])
    w.toolbar.batch_spin.setValue(2)  # many batches: many signals, inserts and flushes
    ticks: list[float] = []
    cpu: list[float] = []

    def tick() -> None:
        ticks.append(time.perf_counter())
        cpu.append(time.thread_time())  # CPU time of this (GUI) thread only

    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(2):  # two real runs, the second replacing the first's results
        run_to_end(w)
        assert w.store is not None and w.store.count == 48
    t1 = time.perf_counter()
    qtbot.wait(30)  # type: ignore[attr-defined]
    timer.stop()
    gaps = np.diff([t0, *ticks])
    work = np.diff([c0, *cpu])
    worst_ms = float(gaps.max()) * 1000
    print(f"\nevent-loop stall during two runs of 48 images ({t1 - t0:.2f} s): max {worst_ms:.1f} ms, "
          f"p99 {np.percentile(gaps, 99) * 1000:.1f} ms, median {np.median(gaps) * 1000:.1f} ms over {len(gaps)} ticks; "
          f"GUI-thread CPU between ticks: max {work.max() * 1000:.1f} ms")
    # The measurement covers the runs: ticks throughout, the last one after the end.
    assert len(gaps) >= 10 and ticks[-1] > t1
    assert work.max() * 1000 < MAX_GUI_WORK_MS
    assert worst_ms < MAX_STALL_MS


def test_hundred_thousand_results_follow_the_threshold(window: MainWindow, synthetic: Callable) -> None:
    """Correctness at 100k rows through the whole window (timing: benchmarks/bench_gui_threshold.py)."""
    w = window
    n = 100_000
    image_set, scores, grids, errors = synthetic(n)
    w.doc.set_folder(image_set)
    w.doc.new_results()
    st = w.store
    assert st is not None
    for start in range(0, n, 10_000):
        sl = slice(start, start + 10_000)
        st.add(np.arange(n)[sl], scores[sl], grids[sl], errors[sl])
        w.view.flush()
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
