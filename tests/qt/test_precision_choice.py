"""The window's precision choice: exact / fast / half / auto, half only where it runs
natively (disabled, saying why, elsewhere), its cost beside it, old stored values migrated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings, Qt

from patchcore_gui.core import precision as prec
from patchcore_gui.qt.settings import AppSettings
from patchcore_gui.qt.toolbar import MainToolBar


def _toolbar(qtbot: object) -> MainToolBar:
    tb = MainToolBar(lambda kind: [])
    qtbot.addWidget(tb)  # type: ignore[attr-defined]
    return tb


def _half_item(tb: MainToolBar):  # type: ignore[no-untyped-def]
    return tb.precision_combo.model().item(tb.precision_combo.findData("half"))  # type: ignore[attr-defined]


def test_old_stored_precisions_read_as_the_new_names(settings_path: Path) -> None:
    raw = QSettings(str(settings_path), QSettings.Format.IniFormat)
    for stored, want in (("fp32", "exact"), ("bf16", "fast"), ("half", "half"), ("fast", "fast"),
                         ("float8", "auto"), ("", "auto")):
        raw.setValue("run/precision", stored)
        raw.sync()
        assert AppSettings(settings_path).precision == want, stored


def test_the_combo_offers_the_four_names_and_maps_old_ones(qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    tb = _toolbar(qtbot)
    combo = tb.precision_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["auto", "exact", "fast", "half"]
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "exact", "fast", "half"]
    tb.set_precision("bf16")
    assert tb.precision == "fast"
    tb.set_precision("fp32")
    assert tb.precision == "exact"
    tb.set_precision("nonsense")
    assert tb.precision == "auto"


def test_half_shows_its_cost_beside_the_choice(qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    tb = _toolbar(qtbot)
    tb.device_combo.setCurrentText("cpu")
    assert _half_item(tb).isEnabled()
    tb.resize(2400, 40)  # every item in the bar, none in the overflow menu
    tb.show()
    assert not tb.precision_note.isVisible()
    tb.set_precision("half")
    assert tb.precision == "half"
    qtbot.waitUntil(tb.precision_note.isVisible, timeout=3000)  # type: ignore[attr-defined]  # laid out lazily
    assert tb.precision_note.text() == prec.HALF_COST
    assert prec.HALF_COST in str(tb.precision_combo.itemData(tb.precision_combo.currentIndex(),
                                                            Qt.ItemDataRole.ToolTipRole))
    tb.set_precision("fast")
    qtbot.waitUntil(lambda: not tb.precision_note.isVisible(), timeout=3000)  # type: ignore[attr-defined]


def test_half_is_disabled_with_the_reason_where_the_cpu_lacks_native_bf16(
        qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tb = _toolbar(qtbot)
    item = _half_item(tb)
    assert not item.isEnabled()
    assert "native bfloat16" in item.toolTip()
    tb.set_precision("half")  # e.g. a remembered choice from another machine
    assert tb.precision == "auto"
