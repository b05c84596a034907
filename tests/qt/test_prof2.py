import time, numpy as np
def test_paint(window, qt_model_path, qt_data, run_to_end):
    w = window; w.show()
    w.open_model(qt_model_path); w.open_folder(qt_data["many"])
    run_to_end(w)
    for name, wid in [("window", w), ("threshold", w.threshold_panel), ("image", w.image_pane), ("table", w.results), ("status", w.statusBar()), ("card", w.card)]:
        ts=[]
        for _ in range(5):
            t=time.perf_counter(); wid.repaint(); ts.append((time.perf_counter()-t)*1000)
        print(name, "repaint ms", np.round(ts,1))
    t=time.perf_counter(); w._shown_count=-1; w._flush(); print("flush", (time.perf_counter()-t)*1000)
    t=time.perf_counter(); w.threshold_panel.set_scores(w.store.scored()[0], w._calibration_scores()); print("set_scores", (time.perf_counter()-t)*1000)
    t=time.perf_counter(); w.threshold_panel.plot.repaint(); print("plot repaint", (time.perf_counter()-t)*1000)
