"""The entry point: arguments, and the demo opened (or its failure shown) without arguments."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from patchcore_gui import app


def fake_demo(monkeypatch: pytest.MonkeyPatch, result: object) -> list[dict]:
    """Install a stand-in ``patchcore_gui.core.demo`` whose ensure_demo returns / raises ``result``."""
    calls: list[dict] = []

    def ensure_demo(**kwargs: object) -> object:
        calls.append(kwargs)
        if isinstance(result, BaseException):
            raise result
        return result

    module = types.ModuleType("patchcore_gui.core.demo")
    module.ensure_demo = ensure_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "patchcore_gui.core.demo", module)
    return calls


def test_arguments_open_model_and_folder(qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], settings_path: Path) -> None:
    args = app.parse_args(["--model", str(qt_model_path), "--images", str(qt_data["mvtec"]), "--settings", str(settings_path)])
    w = app.create_window(args)
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    assert w.model is not None and w.image_set is not None and len(w.image_set) == 10
    assert w.demo_loader is None
    assert w.settings.file_name == str(settings_path)


def test_no_arguments_opens_the_demo(qtbot: object, monkeypatch: pytest.MonkeyPatch, qt_model_path: Path, qt_data: dict[str, Path], settings_path: Path) -> None:
    calls = fake_demo(monkeypatch, (qt_model_path, qt_data["mvtec"]))
    w = app.create_window(app.parse_args(["--settings", str(settings_path)]))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: w.image_set is not None, timeout=20_000)  # type: ignore[attr-defined]
    assert len(calls) == 1
    assert w.model is not None and w.model.path == qt_model_path
    assert w.toolbar.run_action.isEnabled()
    assert w.last_error == ""


def test_demo_failure_is_shown_in_the_window(qtbot: object, monkeypatch: pytest.MonkeyPatch, settings_path: Path) -> None:
    fake_demo(monkeypatch, OSError("disk full\nmore detail"))
    w = app.create_window(app.parse_args(["--settings", str(settings_path)]))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(w.last_error), timeout=20_000)  # type: ignore[attr-defined]
    assert w.last_error == "The demo could not be prepared: OSError: disk full"
    assert "disk full" in w.image_pane.placeholder.text()
    assert w.model is None


def test_missing_demo_module_is_shown_not_raised(qtbot: object, monkeypatch: pytest.MonkeyPatch, settings_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "patchcore_gui.core.demo", None)  # import raises ImportError
    w = app.create_window(app.parse_args(["--settings", str(settings_path)]))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(w.last_error), timeout=20_000)  # type: ignore[attr-defined]
    assert w.last_error.startswith("The demo could not be prepared: ModuleNotFoundError")


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app.parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("patchcore-gui ")
