"""The window's drift banner (issue 13 point 4) and a crop-none model's overlays (point 5).

Screenshots go to /tmp/shots/ (drift.png, crop_none.png) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patchcore_gui.core import drift
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.qt.main_window import MainWindow

from .conftest import textured, with_defect

SHOTS = Path("/tmp/shots")


def _write(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(folder / f"img_{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def drift_setup(qt_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model with 30 calibration scores of good images scored against its bank (the
    qt fixture trains on 12 images: too few for a drift check), a normal and a darker folder."""
    root = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(7)
    model = PatchCoreModel.load(qt_model_path, device="cpu")
    cal, _ = model.predict([textured(rng) for _ in range(30)])
    model.metadata["calibration"] = {**model.metadata.get("calibration", {}), "scores": [float(s) for s in cal]}
    path = root / "calibrated.patchcore"
    model.save(path)
    normal = [textured(rng) for _ in range(40)]
    normal[5] = with_defect(normal[5])  # one defective part in 40 is a normal batch
    dark = [np.clip(textured(rng).astype(np.float64) * 0.5, 0, 255).astype(np.uint8) for _ in range(40)]
    return {"model": path, "normal": _write(root / "normal", normal), "dark": _write(root / "dark", dark)}


def test_banner_shows_live_for_a_drifted_batch_and_not_for_a_normal_one(
    window: MainWindow, qtbot: object, drift_setup: dict[str, Path], run_to_end: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    banner = w.ui.drift_banner
    assert w.open_model(drift_setup["model"])
    assert w.open_folder(drift_setup["dark"])
    monkeypatch.setenv("PATCHCORE_GUI_TEST_BATCH_DELAY", "0.4")  # 10 batches of 4: about 4 s
    w.toolbar.batch_spin.setValue(4)
    seen_live: list[bool] = []
    with qtbot.waitSignal(w.run_finished, timeout=90_000):  # type: ignore[attr-defined]
        assert w.start_run()
        qtbot.waitUntil(lambda: banner.isVisible(), timeout=60_000)  # type: ignore[attr-defined]
        seen_live.append(w.doc.running)
        live_count = w.store.count  # type: ignore[union-attr]
        live_title = banner.title.text()
    assert seen_live == [True] and drift.MIN_RUN_IMAGES <= live_count < 40
    assert live_title.endswith("(live, the run goes on)")
    monkeypatch.delenv("PATCHCORE_GUI_TEST_BATCH_DELAY")
    qtbot.wait(50)  # type: ignore[attr-defined]
    assert banner.isVisible() and "(live" not in banner.title.text()
    assert banner.result is not None and banner.result.shifted and banner.result.run_count == 40
    assert "x the training median" in banner.text.text()
    assert banner.advice.text().startswith("The batch does not look like the training images: check lighting, "
                                           "focus, camera, product.")
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert w.grab().save(str(SHOTS / "drift.png"))
    assert banner.grab().save(str(SHOTS / "drift_banner.png"))
    # The run file records the check.
    assert w.doc.session.meta()["drift"]["status"] == "shifted"

    banner.dismiss()
    assert not banner.isVisible()
    assert w.open_folder(drift_setup["normal"])
    run_to_end(w)
    assert banner.result is not None and banner.result.status == drift.NORMAL
    assert not banner.isVisible()
    assert w.doc.session.meta()["drift"]["status"] == "normal"


def test_a_model_without_enough_calibration_is_said_once(
    window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable
) -> None:
    w = window
    told: list[str] = []
    w.doc.status.connect(lambda text, _ms: told.append(text))
    assert w.open_model(qt_model_path)  # 12 training images: fewer than 20 calibration scores
    assert w.open_folder(qt_data["many"])
    run_to_end(w)
    run_to_end(w)
    notes = [t for t in told if "calibration scores for a drift check" in t]
    assert len(notes) == 1 and notes[0].startswith("Not enough calibration scores")
    assert not w.ui.drift_banner.isVisible()


def test_checks_during_a_run_wait_for_new_images(window: MainWindow, synthetic: Callable) -> None:
    from patchcore_gui.core.result_table import ResultTable

    w = window
    image_set, scores, grids, errors = synthetic(60)
    w.doc.image_set = image_set
    w.doc.set_results(ResultTable(image_set))
    calls: list[int] = []
    real = w.drift.check
    w.drift.check = lambda: calls.append(1) or real()  # type: ignore[method-assign]
    w.doc.results.add(np.arange(30), scores[:30], grids[:30], errors[:30])  # type: ignore[union-attr]
    w.drift._tick()
    w.drift._tick()  # nothing new arrived: no second check
    assert len(calls) == 1
    w.doc.results.add(np.arange(30, 31), scores[30:31], grids[30:31], errors[30:31])  # type: ignore[union-attr]
    w.drift._tick()
    assert len(calls) == 2


def test_crop_none_overlay_covers_the_whole_image(
    window: MainWindow, qtbot: object, qt_data: dict[str, Path], run_to_end: Callable,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from patchcore_gui.core.engine import TrainConfig, train_model

    model = train_model(sorted(qt_data["train"].glob("*.png")),
                        TrainConfig(backbone="efficientnet_lite0", resize=64, crop_mode="none", coreset=0.5),
                        device="cpu", batch_size=4)
    path = tmp_path_factory.mktemp("whole") / "whole.patchcore"
    model.save(path)
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    assert w.open_model(path)
    assert w.open_folder(qt_data["mvtec"])
    run_to_end(w)
    st = w.store
    assert st is not None
    w.results.select_image(next(i for i, p in enumerate(st.paths) if p.endswith("square/001.png")))
    qtbot.wait(50)  # type: ignore[attr-defined]
    pane = w.image_pane
    assert pane.current_map is not None and pane.current_map.shape == (96, 96)
    assert np.isfinite(pane.current_map).all()  # nothing cut off: no uncovered border
    assert pane.heat_rgba is not None and (pane.heat_rgba[..., 3] == 255).all()
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert pane.grab().save(str(SHOTS / "crop_none.png"))
    assert "whole image resized to 64 x 64" in w.doc.model_summary["coverage"]  # type: ignore[index]
    from patchcore_gui.qt.model_card import describe

    assert describe(w.doc.model_summary)["input"] == "whole image → 64 × 64 px (no crop)"  # type: ignore[arg-type]


def test_live_checks_read_a_sample_and_the_final_check_every_score(
    window: MainWindow, synthetic: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patchcore_gui.core.result_table import ResultTable
    from patchcore_gui.qt import drift_banner

    w = window
    image_set, scores, grids, errors = synthetic(200)
    w.doc.image_set = image_set
    w.doc.set_results(ResultTable(image_set))
    w.drift._cal = np.linspace(1.0, 6.0, 40)  # a model's calibration, as if read from it
    w.doc.results.add(np.arange(200), scores, grids, errors)  # type: ignore[union-attr]
    monkeypatch.setattr(drift_banner, "LIVE_SAMPLE", 50)
    w.doc.running = True  # as during a run (no signal: the timer stays off)
    live = w.drift.check()
    w.doc.running = False
    final = w.drift.check()
    assert live is not None and final is not None
    good = (image_set.labels == 0) & np.isfinite(scores)  # defects (every 7th) are left out
    assert live.run_count <= 50 and final.run_count == int(good.sum())
