import time, functools, numpy as np
from PySide6.QtCore import QTimer
import pytest, torch
@pytest.mark.parametrize('si', [0.005, 0.001, 0.0005])
@pytest.mark.parametrize('nt', [2, 1])
def test_prof(si, nt, window, qt_model_path, qt_data, run_to_end):
    w = window; w.show()
    w.open_model(qt_model_path); w.open_folder(qt_data["many"]); w.toolbar.batch_spin.setValue(2)
    rec = {}
    def wrap(obj, name):
        f = getattr(obj, name)
        @functools.wraps(f)
        def g(*a, **k):
            t = time.perf_counter(); r = f(*a, **k); rec.setdefault(name, []).append((time.perf_counter()-t)*1000); return r
        setattr(obj, name, g)
    for n in ("_flush", "_on_batch", "_on_progress", "_show_image"):
        wrap(w, n)
    w.results.image_selected.disconnect(); w.results.image_selected.connect(w._show_image)
    w.controller.batch_ready.disconnect(); w.controller.batch_ready.connect(w._on_batch)
    w.controller.progressed.disconnect(); w.controller.progressed.connect(w._on_progress)
    w.flush_timer.timeout.disconnect(); w.flush_timer.timeout.connect(w._flush)
    gaps=[]; last=[time.perf_counter()]
    def tick():
        now=time.perf_counter(); gaps.append((now-last[0])*1000, ); last[0]=now
    timer = QTimer(interval=10); timer.timeout.connect(tick); timer.start()
    torch.set_num_threads(nt); import sys; sys.setswitchinterval(si)
    t0=time.perf_counter()
    for _ in range(3):
        run_to_end(w)
    print('\nthreads', nt, 'si', si, 'wall', time.perf_counter()-t0)
    torch.set_num_threads(2)
    timer.stop()
    print("\nticks", len(gaps), "max", max(gaps), "p90", np.percentile(gaps, 90), "p50", np.percentile(gaps,50))
    print(sorted(gaps)[-10:])
    for k, v in rec.items(): print(k, len(v), "max %.1f sum %.1f" % (max(v), sum(v)))
