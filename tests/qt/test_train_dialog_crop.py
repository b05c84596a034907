"""The training dialog's whole-image choice (issue 13 point 5) and the line saying what the crop leaves out."""

from __future__ import annotations

from pathlib import Path

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.qt.main_window import MainWindow


def test_dialog_says_what_the_centre_crop_leaves_out(window: MainWindow) -> None:
    dlg = window.dialogs.show_train()
    assert dlg.coverage_label.text() == (
        "Centre crop 224 of 256: the outer 6.25 % at each edge (23 % of a square image's area, "
        "more of an oblong one) is not inspected.")
    dlg.crop_spin.setValue(256)
    assert dlg.coverage_label.text().startswith("Centre crop 256 of 256: the outer 0 % at each edge")
    dlg.crop_spin.setValue(300)
    assert dlg.coverage_label.text() == "Resize must be at least the crop."
    assert not dlg.form.isRowVisible(dlg.whole_check)  # an advanced option
    dlg.advanced_check.setChecked(True)
    assert dlg.form.isRowVisible(dlg.whole_check)
    dlg.whole_check.setChecked(True)
    assert not dlg.crop_spin.isEnabled()
    assert dlg.coverage_label.text() == "Whole image resized to 256 x 256 (no centre crop; aspect not kept)."
    dlg.resize_spin.setValue(0)
    assert dlg.coverage_label.text() == "Set a resize: the whole image is resized to resize x resize."


def test_dialog_trains_a_whole_image_model(window: MainWindow, qt_data: dict[str, Path], qtbot: object,
                                           tmp_path: Path) -> None:
    dlg = window.dialogs.show_train()
    dlg.set_folder(qt_data["train"])
    dlg.set_backbone("efficientnet_lite0")
    dlg.advanced_check.setChecked(True)
    dlg.whole_check.setChecked(True)
    dlg.resize_spin.setValue(0)
    assert not dlg.start() and "set a resize of 32 px or more" in dlg.last_message
    dlg.resize_spin.setValue(64)
    dlg.coreset_spin.setValue(20.0)
    dlg.device_combo.setCurrentText("cpu")
    out = tmp_path / "whole.patchcore"
    dlg.output_field.set_text(str(out))
    with qtbot.waitSignal(dlg.task_succeeded, timeout=120_000):  # type: ignore[attr-defined]
        assert dlg.start()
    saved = PatchCoreModel.load(out, device="cpu")
    assert saved.config.crop_mode == "none" and saved.config.crop == 64 and saved.config.resize == 64
