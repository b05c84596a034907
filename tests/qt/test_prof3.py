import time, numpy as np, pytest
from PySide6.QtCore import QObject, QEvent, QTimer
from PySide6.QtWidgets import QApplication
class Spy(QObject):
    def __init__(self):
        super().__init__(); self.log=[]
    def eventFilter(self, obj, ev):
        self.log.append((time.perf_counter(), ev.type().name, type(obj).__name__, obj.objectName()))
        return False
@pytest.mark.parametrize("rep", range(3))
def test_prof3(rep, window, qt_model_path, qt_data, run_to_end):
    w = window; w.show()
    w.open_model(qt_model_path); w.open_folder(qt_data["many"]); w.toolbar.batch_spin.setValue(4)
    spy=Spy(); QApplication.instance().installEventFilter(spy)
    ticks=[]
    timer = QTimer(interval=10); timer.timeout.connect(lambda: ticks.append(time.perf_counter())); timer.start()
    t0=time.perf_counter(); run_to_end(w)
    QApplication.instance().removeEventFilter(spy)
    t = np.array(ticks); g = np.diff(t); k = int(np.argmax(g))
    a, b = t[k], t[k+1]
    print("\nmax gap %.1f at %.2f" % (g[k]*1000, a-t0))
    evs = [e for e in spy.log if a <= e[0] <= b]
    from collections import Counter
    c = Counter()
    for i, e in enumerate(evs):
        nxt = evs[i+1][0] if i+1 < len(evs) else b
        c[e[1:3]] += (nxt-e[0])*1000
    for k_, v in c.most_common(8): print("  %.1f" % v, k_)
    print(len(evs), "events")
