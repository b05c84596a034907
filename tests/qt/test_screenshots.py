"""Screenshots of the main states, written to artifacts/screenshots/ for review."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from patchcore_gui.qt.main_window import MainWindow

OUT = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def as_array(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a grabbed widget."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def save(widget: object, name: str) -> np.ndarray:
    OUT.mkdir(parents=True, exist_ok=True)
    pix = widget.grab()  # type: ignore[attr-defined]
    path = OUT / f"{name}.png"
    assert pix.save(str(path))
    assert path.stat().st_size > 10_000
    return as_array(pix.toImage())


def test_screenshots_of_main_states(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    empty = save(w, "01-empty")
    assert empty.shape[:2] == (w.height(), w.width())
    assert w.image_pane.placeholder.isVisible()

    w.open_model(qt_model_path)
    w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    st = w.store
    assert st is not None
    w.results.select_image(next(i for i, p in enumerate(st.paths) if p.endswith("square/001.png")))
    qtbot.wait(50)  # type: ignore[attr-defined]
    shot = save(w, "02-after-run-defect-overlay")
    save(w.image_pane, "02b-image-pane")
    pane = save(w.image_pane.view, "02c-image-view")
    # The overlay is on screen: inferno's hot end (pale yellow) over the defect, and
    # the cyan ground-truth outline.
    hot = (pane[..., 0] > 230) & (pane[..., 1] > 200) & (pane[..., 2] < 170)
    cyan = (pane[..., 0] < 90) & (pane[..., 1] > 180) & (pane[..., 2] > 180)
    assert hot.sum() > 500 and cyan.sum() > 50
    assert shot.std() > 20

    w.results.select_image(int(np.nanargmin(np.where(st.labels == 0, st.scores, np.nan))))
    w.results.set_filter("all")
    qtbot.wait(50)  # type: ignore[attr-defined]
    save(w.image_pane, "03-good-image-pane")
    good = save(w.image_pane.view, "03b-good-image-view")
    assert ((good[..., 0] > 230) & (good[..., 1] > 200) & (good[..., 2] < 170)).sum() < 50

    w.set_threshold(float(np.nanmax(st.scores[st.labels == 0])) - 1e-3)
    w.metrics_panel.tabs.setCurrentIndex(1)
    w.results.set_filter("fp")
    qtbot.wait(50)  # type: ignore[attr-defined]
    save(w, "04-ground-truth-confusion-fp-filter")
    assert w.metrics_panel.cells["fp"].text() == "1"


def test_screenshots_of_dialogs(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable,
    tmp_path: Path,
) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    w.open_model(qt_model_path)
    w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    w.results.select_row(0)
    w.mark_current("OK")
    w.set_threshold(w.threshold * 0.9, "line 3 tuning", log=True)
    qtbot.wait(50)  # type: ignore[attr-defined]
    save(w, "05-reviewed-run-file")
    assert "✓ OK" in {w.table_model.data(w.table_model.index(r, 5)) for r in range(w.table_model.rowCount())}

    train = w.dialogs.show_train()
    train.set_folder(qt_data["train"])
    qtbot.waitExposed(train)  # type: ignore[attr-defined]
    train.adjustSize()
    shot = save(train, "06-train-dialog")
    assert shot.shape[0] > 300
    assert "12 good images" in train.count_label.text()
    train.close()

    report = w.dialogs.show_report()
    assert report is not None
    report.set_path(tmp_path / "report.html")
    report.set_operator("Ana")
    qtbot.waitExposed(report)  # type: ignore[attr-defined]
    report.adjustSize()
    save(report, "07-export-dialog")
    report.close()

    importer = w.dialogs.show_import()
    qtbot.waitExposed(importer)  # type: ignore[attr-defined]
    assert not importer.start()  # no folder chosen: the reason shows in the status line
    importer.adjustSize()
    dlg = save(importer, "08-import-dialog")
    # The refusal is drawn in the error colour (#e5534b): red text pixels are on screen.
    red = (dlg[..., 0] > 180) & (dlg[..., 1] < 120) & (dlg[..., 2] < 120)
    assert red.sum() > 30
    importer.close()

    log = w.dialogs.show_threshold_log()
    qtbot.waitExposed(log)  # type: ignore[attr-defined]
    save(log, "09-threshold-log")
    assert log.table.rowCount() == 1
