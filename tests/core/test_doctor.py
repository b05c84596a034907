"""``patchcore doctor``: the report, its JSON form, and exit 1 with the reason on problems."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path
from typing import Any

import pytest

from patchcore_gui.cli import main
from patchcore_gui.commands import doctor


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Doctor creates the folders it checks: point them into tmp, never at the real home."""
    cache = tmp_path / "cache"
    config = tmp_path / "config"
    monkeypatch.setenv("PATCHCORE_GUI_CACHE", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return {"cache": cache, "config": config}


def _json_report(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    rc = main(["doctor", "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _row(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (row,) = [c for c in doc["checks"] if c["name"] == name]
    return row


def test_normal_run_is_ok_and_complete(capsys: pytest.CaptureFixture[str], isolated_folders: dict[str, Path]) -> None:
    import faiss
    import numpy
    import torch
    import torchvision

    rc, doc = _json_report(capsys)
    assert rc == 0, doc["problems"]
    assert doc["ok"] is True and doc["problems"] == []
    assert _row(doc, "torch")["value"] == torch.__version__
    assert _row(doc, "torchvision")["value"] == torchvision.__version__
    assert _row(doc, "numpy")["value"] == numpy.__version__
    assert _row(doc, "faiss")["value"] == faiss.__version__
    for name in ("python", "PySide6", "pyqtgraph", "CUDA", "faiss backend", "efficientnet_lite0",
                 "wide_resnet50_2", "cache folder", "settings folder"):
        _row(doc, name)
    assert _row(doc, "CUDA")["value"] == (f"{torch.cuda.device_count()} device(s)" if torch.cuda.is_available()
                                          else "not available")
    assert _row(doc, "faiss backend")["value"] in ("CPU", "GPU")
    assert _row(doc, "efficientnet_lite0")["value"] == "available"  # shipped in a PyPI package
    # The folders were created and probed where the application will use them.
    cache = _row(doc, "cache folder")
    assert cache["status"] == "ok" and cache["detail"] == str(isolated_folders["cache"] / "demo")
    settings = _row(doc, "settings folder")
    assert settings["status"] == "ok" and settings["detail"] == str(isolated_folders["config"] / "PatchCore")
    assert (isolated_folders["cache"] / "demo").is_dir()
    assert list((isolated_folders["cache"] / "demo").iterdir()) == []  # the probe file is gone


def test_table_output_is_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["group", "check", "status", "value", "detail"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = [ln for ln in lines[2:] if ln and not ln.startswith("no problems")]
    status_col = lines[0].index("status")
    for ln in rows:  # every status sits in the same column
        assert ln[status_col:].split()[0] in ("ok", "info", "PROBLEM"), ln
    assert lines[-1] == "no problems found"


def test_unwritable_cache_is_exit_1_with_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # A cache path below a regular file cannot be created, even by root.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("PATCHCORE_GUI_CACHE", str(blocker / "cache"))
    rc, doc = _json_report(capsys)
    assert rc == 1 and doc["ok"] is False
    row = _row(doc, "cache folder")
    assert row["status"] == "PROBLEM" and row["value"] == "not writable"
    assert "Not a directory" in row["detail"] and str(blocker) in row["detail"]
    assert any(p.startswith("cache folder: not writable") for p in doc["problems"])
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s): cache folder: not writable" in out.splitlines()[-1]


def test_unwritable_folder_simulated_permission_error(monkeypatch: pytest.MonkeyPatch,
                                                      isolated_folders: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Root ignores permission bits, so a read-only folder is simulated at the probe.
    real = doctor.tempfile.mkstemp

    def refuse(*args: Any, dir: Any = None, **kwargs: Any) -> Any:  # mkstemp's own name
        if dir is not None and Path(dir) == isolated_folders["config"] / "PatchCore":
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(doctor.tempfile, "mkstemp", refuse)
    rc, doc = _json_report(capsys)
    assert rc == 1
    row = _row(doc, "settings folder")
    assert row["status"] == "PROBLEM" and "Permission denied" in row["detail"]


@pytest.mark.parametrize("missing", ["faiss", "torch", "PySide6", "pyqtgraph"])
def test_missing_package_is_a_problem_not_a_crash(missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == missing or name.startswith(missing + "."):
            raise ImportError(f"No module named '{missing}'")
        return real_import(name, *args, **kwargs)

    # importlib.import_module bypasses builtins.__import__; make both refuse.
    real_import_module = doctor.importlib.import_module

    def fake_import_module(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == missing or name.startswith(missing + "."):
            raise ImportError(f"No module named '{missing}'")
        return real_import_module(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(doctor.importlib, "import_module", fake_import_module)
    rows = doctor.run_checks()
    monkeypatch.undo()
    problems = {r.name: r for r in rows if r.status == doctor.PROBLEM}
    assert missing in problems, [r.name for r in rows]
    assert problems[missing].value == "missing"
    assert f"No module named '{missing}'" in problems[missing].detail
    if missing == "faiss":
        assert "faiss backend" in problems
    if missing == "torch":
        assert "torch device" in problems


def test_settings_dir_matches_qsettings(isolated_folders: dict[str, Path]) -> None:
    """Doctor finds the settings folder without Qt; it must be where QSettings writes."""
    pytest.importorskip("PySide6")
    from patchcore_gui.qt.settings import AppSettings

    qt_file = Path(AppSettings().file_name)
    assert qt_file.parent == doctor.settings_dir() == isolated_folders["config"] / "PatchCore"


def test_relative_xdg_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/config")
    assert doctor.settings_dir() == Path.home() / ".config" / "PatchCore"
    assert os.path.isabs(doctor.settings_dir())
