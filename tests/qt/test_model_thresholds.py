"""The model card's threshold lines and the window's "save threshold to model" history entry."""

from __future__ import annotations

import math
from pathlib import Path

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.thresholds import current_user
from patchcore_gui.qt.model_card import ModelCard, describe
from patchcore_gui.qt.model_thresholds import write_with_threshold


def test_window_save_writes_the_same_history_entry_as_the_command(qt_model_path: Path, tmp_path: Path) -> None:
    m = PatchCoreModel.load(qt_model_path, device="cpu")
    target = tmp_path / "tuned.patchcore"
    write_with_threshold(m, target, 200.0, 40.0, "best F1 on line 3", review_from=150.0)
    saved = PatchCoreModel.load(target, device="cpu")
    assert (saved.image_threshold, saved.review_from, saved.pixel_threshold) == (200.0, 150.0, 40.0)
    e = saved.metadata["threshold"]["history"][-1]
    assert e["user"] == current_user() and e["note"] == "best F1 on line 3"
    assert (e["old_image"], e["image"], e["review_from"], e["pixel"]) == (m.image_threshold, 200.0, 150.0, 40.0)
    assert math.isnan(e["old_review_from"]) and e["old_pixel"] == m.pixel_threshold
    # No band (NaN) is no change to record.
    write_with_threshold(saved, tmp_path / "again.patchcore", 210.0, 40.0, "x", review_from=math.nan)
    e2 = PatchCoreModel.load(tmp_path / "again.patchcore", device="cpu").metadata["threshold"]["history"][-1]
    assert e2["review_from"] is not None and math.isnan(e2["review_from"])  # 150 -> none is a change


def test_card_says_how_the_thresholds_were_set(qt_model_path: Path, tmp_path: Path, qapp: object) -> None:
    m = PatchCoreModel.load(qt_model_path, device="cpu")
    lines = describe(m.summary())
    assert lines["rule"].startswith("image: 1 % false rejects estimated from 12 out-of-bank scores")
    assert lines["changes"] == "never (as trained)"
    assert lines["provenance"].startswith("recorded: 12 training files")
    assert "review" not in lines["threshold"]
    tuned = m.with_threshold(200.0, "line 3", review_from=150.0, user="qe")
    tuned.metadata["threshold"]["review_rate"] = 0.05
    tuned = tuned.with_threshold(210.0, "line 4", user="qe")
    lines = describe(tuned.summary())
    assert lines["threshold"] == f"image 210  ·  review from 150 (5 % of good)  ·  pixel {m.pixel_threshold:.4g}"
    assert lines["changes"].endswith("qe: image 200 -> 210 (line 4)")
    card = ModelCard()
    card.set_summary(tuned.summary(), "t.patchcore")
    assert card.values["changes"].toolTip().count("\n") == 1  # both changes, newest last
    assert card.values["changes"].toolTip().splitlines()[0].endswith("(line 3)")
