"""The entry point: arguments, and the demo opened (or its failure shown) without arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcore_gui import app
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.qt.startup import create_window


def fake_demo_module(folder: Path, body: str) -> str:
    """Write a stand-in for ``patchcore_gui.core.demo`` into ``folder``; returns its target."""
    (folder / "fake_demo.py").write_text(
        "def ensure_demo(log=None):\n"
        "    log('preparing the fake demo')\n"
        f"    {body}\n"
    )
    return "fake_demo:ensure_demo"


def demo_window(qtbot: object, settings_path: Path, target: str, extra: list[str]) -> MainWindow:
    w = create_window(app.parse_args(["--settings", str(settings_path)]), demo_target=target, demo_path=extra)
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    return w


def test_arguments_open_model_and_folder(qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], settings_path: Path) -> None:
    args = app.parse_args(["--model", str(qt_model_path), "--images", str(qt_data["mvtec"]), "--settings", str(settings_path)])
    w = create_window(args)
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    assert w.model is not None and w.image_set is not None and len(w.image_set) == 10
    assert w.demo_loader is None
    assert w.settings.file_name == str(settings_path)


def test_run_argument_opens_a_run_file(qtbot: object, qt_model_path: Path, qt_data: dict[str, Path],
                                       settings_path: Path, tmp_path: Path) -> None:
    from patchcore_gui.core.datasets import scan_folder
    from patchcore_gui.core.model import PatchCoreModel
    from patchcore_gui.core.run_driver import predict_into_run

    run = tmp_path / "cli.pcrun"
    model = PatchCoreModel.load(qt_model_path, device="cpu")
    predict_into_run(model, scan_folder(qt_data["mvtec"]), run, batch_size=4)
    w = create_window(app.parse_args(["--run", str(run), "--settings", str(settings_path)]))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    assert w.demo_loader is None and w.last_error == ""
    assert w.store is not None and w.store.count == 10 and w.table_model.rowCount() == 10
    assert w.session.path == run and "cli.pcrun" in w.windowTitle()
    assert w.toolbar.batch_spin.value() == 4
    w.close()


def test_no_arguments_opens_the_demo(qtbot: object, tmp_path: Path, qt_model_path: Path, qt_data: dict[str, Path], settings_path: Path) -> None:
    target = fake_demo_module(tmp_path, f"return {str(qt_model_path)!r}, {str(qt_data['mvtec'])!r}")
    w = demo_window(qtbot, settings_path, target, [str(tmp_path)])
    qtbot.waitUntil(lambda: w.image_set is not None, timeout=30_000)  # type: ignore[attr-defined]
    assert w.model is not None and w.model.path == qt_model_path
    assert w.toolbar.run_action.isEnabled()
    assert w.last_error == ""
    qtbot.waitUntil(lambda: not w.demo_loader.is_running(), timeout=10_000)  # type: ignore[attr-defined]


def test_demo_failure_is_shown_in_the_window(qtbot: object, tmp_path: Path, settings_path: Path) -> None:
    target = fake_demo_module(tmp_path, "raise OSError('disk full\\nmore detail')")
    w = demo_window(qtbot, settings_path, target, [str(tmp_path)])
    qtbot.waitUntil(lambda: bool(w.last_error), timeout=30_000)  # type: ignore[attr-defined]
    assert w.last_error == "The demo could not be prepared: OSError: disk full"
    assert "disk full" in w.image_pane.placeholder.text()
    assert w.model is None


def test_missing_demo_module_is_shown_not_raised(qtbot: object, settings_path: Path) -> None:
    w = demo_window(qtbot, settings_path, "no_such_demo_module:ensure_demo", [])
    qtbot.waitUntil(lambda: bool(w.last_error), timeout=30_000)  # type: ignore[attr-defined]
    assert w.last_error == (
        "The demo could not be prepared: ModuleNotFoundError: No module named 'no_such_demo_module'"
    )


def test_closing_while_the_demo_is_prepared_stops_it(qtbot: object, tmp_path: Path, settings_path: Path) -> None:
    target = fake_demo_module(tmp_path, "import time; time.sleep(600)")
    w = demo_window(qtbot, settings_path, target, [str(tmp_path)])
    qtbot.waitUntil(w.demo_loader.is_running, timeout=10_000)  # type: ignore[attr-defined]
    w.close()
    assert not w.demo_loader.is_running()
    assert w.last_error == ""  # a deliberate stop is not reported as a failure


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app.parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("patchcore-gui ")
