"""Issue 12 point 12: missing X11 libraries are named with the one apt command (finder monkeypatched)."""

from __future__ import annotations

import ctypes.util

import pytest

from patchcore_gui.core import x_libraries as xl

GONE = {"xcb-cursor", "xcb-icccm"}


def finder(name: str) -> str | None:
    return None if name in GONE else f"lib{name}.so.0"


def test_missing_libraries_name_their_packages_and_the_command() -> None:
    assert xl.missing_x_packages(finder) == ["libxcb-cursor0", "libxcb-icccm4"]
    message = xl.missing_x_message(finder)
    assert "libxcb-cursor0, libxcb-icccm4" in message
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4" in message
    assert xl.missing_x_message(lambda name: f"lib{name}.so") == ""


def test_only_an_xcb_start_is_checked() -> None:
    assert xl.needs_xcb({}, "linux")
    assert xl.needs_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not xl.needs_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not xl.needs_xcb({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not xl.needs_xcb({}, "win32")


def test_doctor_lists_the_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchcore_gui.commands import doctor

    monkeypatch.setattr(ctypes.util, "find_library", finder)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    (row,) = doctor.check_x_libraries()
    assert row.status == doctor.PROBLEM
    assert row.value == "missing: libxcb-cursor0, libxcb-icccm4"
    assert row.detail == "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4"


def test_doctor_on_a_headless_machine_only_informs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No X display: the commands work without the libraries, so no problem (exit 0)."""
    from patchcore_gui.commands import doctor

    monkeypatch.setattr(ctypes.util, "find_library", finder)
    monkeypatch.delenv("DISPLAY", raising=False)
    (row,) = doctor.check_x_libraries()
    assert row.status == doctor.INFO
    assert row.value == "missing: libxcb-cursor0, libxcb-icccm4"
    assert row.detail.endswith("sudo apt-get install -y libxcb-cursor0 libxcb-icccm4")


def test_the_gui_says_it_before_qt_starts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui import app

    class NoApp:
        @staticmethod
        def instance() -> None:
            return None

    monkeypatch.setattr(app, "QApplication", NoApp)
    monkeypatch.setattr(xl, "needs_xcb", lambda: True)
    monkeypatch.setattr(ctypes.util, "find_library", finder)
    assert "libxcb-cursor0" in app.warn_missing_x_libraries()
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4" in capsys.readouterr().err
