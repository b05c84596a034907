"""Issue 14 in the window: the Evidence pane (selection, clicks, arrow keys) and Teach as good."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt

from patchcore_gui.core.provenance import file_sha256
from patchcore_gui.qt.main_window import MainWindow

SHOTS = Path(os.environ.get("PATCHCORE_SHOTS", "/tmp/shots"))


def _shot(widget: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert widget.grab().save(str(SHOTS / f"{name}.png"))  # type: ignore[attr-defined]


def _ran(window: MainWindow, qtbot: object, model: Path, folder: Path, run_to_end: Callable) -> MainWindow:
    window.show()
    qtbot.waitExposed(window)  # type: ignore[attr-defined]
    assert window.open_model(model) and window.open_folder(folder)
    run_to_end(window)
    return window


def test_evidence_pane_follows_selection_clicks_and_arrows(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = _ran(window, qtbot, qt_model_path, qt_data["mvtec"], run_to_end)
    pane, view = w.evidence, w.evidence.view
    assert not pane.dock.isVisible()
    pane.action.trigger()  # E
    assert pane.dock.isVisible() and view.hasFocus()
    st = w.store
    bad = next(i for i, p in enumerate(st.paths) if p.endswith("square/001.png"))
    w.results.select_image(bad)
    qtbot.waitUntil(lambda: view.evidence is not None and view.evidence.image == st.paths[bad], timeout=20_000)
    ev = view.evidence
    assert ev.hottest and np.isfinite(ev.patch_score) and ev.nearest.image_index >= 0
    assert all(p.pixmap() is not None and not p.pixmap().isNull() for p in view.pictures)
    assert "Nearest normal:" in view.caption.text()
    # The box on the image pane is the patch's box in original pixels.
    assert pane.box.isVisible()
    r = pane.box.rect()
    assert (r.x(), r.y()) == (ev.box_original[0], ev.box_original[1])
    _shot(w, "evidence-window")
    _shot(pane.dock, "evidence-pane")

    # A click on the image explains the patch under it (here near the top-left corner).
    ipane = w.image_pane
    scene_pt = ipane.viewbox.mapViewToScene(QPointF(8.0, 8.0))
    qtbot.mouseClick(ipane.view.viewport(), Qt.MouseButton.LeftButton,  # type: ignore[attr-defined]
                     pos=ipane.view.mapFromScene(scene_pt))
    qtbot.waitUntil(lambda: view.evidence is not ev and view.evidence is not None, timeout=20_000)
    clicked = view.evidence
    assert not clicked.hottest or clicked.cell == ev.cell
    x0, y0, x1, y1 = clicked.box_original
    assert x0 <= 8.0 <= x1 and y0 <= 8.0 <= y1
    # Arrow keys move the patch one cell.
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: view.evidence is not clicked, timeout=20_000)
    assert view.evidence.cell == (clicked.cell[0], clicked.cell[1] + 1)


def test_teach_dialog_lists_flips_and_saves_a_new_file(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable,
    tmp_path: Path,
) -> None:
    w = _ran(window, qtbot, qt_model_path, qt_data["mvtec"], run_to_end)
    st = w.store
    # Nothing confirmed OK yet: refused with a reason.
    assert w.teach.open() is None and "confirm" in w.last_error
    # The operator wrongly confirms a defect OK (the mistake the flip list must catch) and a good image.
    bad = next(i for i, p in enumerate(st.paths) if p.endswith("square/000.png"))
    good = next(i for i, p in enumerate(st.paths) if p.endswith("good/000.png"))
    for i in (bad, good):
        w.results.select_image(i)
        assert w.mark_current("OK")
    dialog = w.teach.open()
    assert dialog is not None and dialog.images.count() == 2
    assert bad in dialog.chosen()  # the model calls it NG: ticked by default
    sha = file_sha256(qt_model_path)
    with qtbot.waitSignal(dialog.task_succeeded, timeout=120_000):  # type: ignore[attr-defined]
        assert dialog.start()
    flips = {Path(f.path).parent.name + "/" + Path(f.path).name: f for f in dialog.flip_list}
    assert "square/000.png" in flips and flips["square/000.png"].new_verdict == "OK"
    assert flips["square/000.png"].truth == "defect"
    assert "known defect" in dialog.summary.text()
    assert dialog.table.rowCount() == len(dialog.flip_list) > 0
    qtbot.wait(50)  # type: ignore[attr-defined]
    _shot(dialog, "teach-flip-list")
    out = tmp_path / "taught.patchcore"
    w._ask_save_path = lambda _default: str(out)  # type: ignore[method-assign]
    w.confirm = lambda _title, _text: False  # do not open it
    assert dialog.save()
    assert out.is_file() and file_sha256(qt_model_path) == sha
    from patchcore_gui.core.model import PatchCoreModel

    child = PatchCoreModel.load(out, device="cpu")
    assert child.bank_size > w.model.bank_size
    assert [t["path"] for t in child.metadata["teach_history"][-1]["taught"]] == [st.paths[bad]]
