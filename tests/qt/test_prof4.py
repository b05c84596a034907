import time, numpy as np, pytest
from PySide6.QtCore import QTimer
@pytest.mark.parametrize("rep", range(4))
@pytest.mark.parametrize("reserve", [True, False])
def test_stall(reserve, rep, qtbot, window, qt_model_path, qt_data, run_to_end):
    w = window; w.show(); qtbot.waitExposed(w)
    w.open_model(qt_model_path); w.open_folder(qt_data["many"]); w.toolbar.batch_spin.setValue(4)
    import patchcore_gui.qt.worker as wk; wk.RESERVE_GUI_CORE = reserve; w.toolbar.batch_spin.setValue(2)
    ticks=[]
    timer = QTimer(interval=10); timer.timeout.connect(lambda: ticks.append(time.perf_counter())); timer.start()
    t0 = time.perf_counter(); run_to_end(w); t1 = time.perf_counter()
    timer.stop()
    t = np.array(ticks); g = np.diff(t)*1000; k=int(np.argmax(g))
    print("\nreserve", reserve, "wall %.2f max %.1f at %.2f s (run end at %.2f) p99 %.1f" % (t1-t0, g[k], t[k]-t0, t1-t0, np.percentile(g, 99)), "top", np.round(np.sort(g)[-5:]))
