import time, numpy as np
from PySide6.QtCore import QObject, QEvent, QTimer
from PySide6.QtWidgets import QApplication
class Spy(QObject):
    def __init__(self):
        super().__init__(); self.log=[]
    def eventFilter(self, obj, ev):
        self.log.append((time.perf_counter(), ev.type().name, type(obj).__name__, obj.objectName()))
        return False
def test_prof3(window, qt_model_path, qt_data, run_to_end):
    w = window; w.show()
    w.open_model(qt_model_path); w.open_folder(qt_data["many"]); w.toolbar.batch_spin.setValue(2)
    spy=Spy(); QApplication.instance().installEventFilter(spy)
    ticks=[]
    timer = QTimer(interval=10); timer.timeout.connect(lambda: ticks.append(time.perf_counter())); timer.start()
    run_to_end(w); run_to_end(w)
    QApplication.instance().removeEventFilter(spy)
    t = np.array(ticks); g = np.diff(t); k = int(np.argmax(g))
    a, b = t[k], t[k+1]
    print("\nmax gap", g[k]*1000)
    evs = [e for e in spy.log if a <= e[0] <= b]
    for i, e in enumerate(evs):
        nxt = evs[i+1][0] if i+1 < len(evs) else b
        if nxt - e[0] > 0.003: print("%.1f" % ((nxt-e[0])*1000), e[1:])
    print(len(evs), "events")
