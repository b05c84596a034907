"""``patchcore-gui --self-test``: every step through the real window, a reason on failure."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from patchcore_gui import app
from patchcore_gui.qt.self_test import SelfTest


def lines_of(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def step_line(lines: list[str], step: str) -> str:
    found = [ln for ln in lines if ln.startswith(f"self-test: {step} ")]
    assert len(found) == 1, lines
    return found[0]


def fake_demo(folder: Path, body: str) -> str:
    (folder / "fake_self_test_demo.py").write_text(f"def ensure_demo(log=None):\n    {body}\n")
    return "fake_self_test_demo:ensure_demo"


def test_main_self_test_passes_and_keeps_its_files(
    qt_model_path: Path, qt_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "st"
    code = app.main(["--self-test", "--self-test-dir", str(work),
                     "--model", str(qt_model_path), "--images", str(qt_data["train"])])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert [ln.split()[1] for ln in lines] == ["window", "open", "run", "threshold", "report", "PASSED"]
    assert "usable" in step_line(lines, "window") and "after launch" in step_line(lines, "window")
    assert "m.patchcore, 12 images" in step_line(lines, "open")
    assert "12 scored" in step_line(lines, "run")
    assert "logged" in step_line(lines, "threshold")
    report = work / "self-test-report.pdf"
    assert report.read_bytes()[:5] == b"%PDF-"
    assert str(report) in step_line(lines, "report")
    assert len(list((work / "runs").glob("*.pcrun"))) == 1  # run files stay out of the user's folder


def test_threshold_step_counts_the_median_split(qapp: object, qt_model_path: Path, qt_data: dict[str, Path],
                                                tmp_path: Path) -> None:
    import numpy as np

    out = io.StringIO()
    st = SelfTest(qapp, app.parse_args(["--model", str(qt_model_path), "--images", str(qt_data["train"])]),
                  out=out, workdir=tmp_path)
    try:
        st.step_window(tmp_path)
        st.step_open(tmp_path)
        st.step_run(tmp_path)
        st.step_threshold(tmp_path)
        w = st.window
        scores = np.asarray(w.store.scores, dtype=np.float64)
        assert w.threshold == float(np.median(scores))
        assert w.threshold_panel.ng_label.text() == f"NG {int(np.sum(scores > w.threshold))}"
        assert w.session.threshold_log()[-1].note == "self-test"
    finally:
        st.window.close()


def test_demo_is_opened_through_the_demo_child(qapp: object, qt_model_path: Path, qt_data: dict[str, Path],
                                               tmp_path: Path) -> None:
    target = fake_demo(tmp_path, f"return {str(qt_model_path)!r}, {str(qt_data['train'])!r}")
    out = io.StringIO()
    code = SelfTest(qapp, app.parse_args([]), out=out, demo_target=target, demo_path=(str(tmp_path),)).run()
    assert code == 0, out.getvalue()
    assert lines_of(out)[-1].startswith("self-test: PASSED")


def test_demo_failure_fails_the_open_step_with_its_reason(qapp: object, tmp_path: Path) -> None:
    target = fake_demo(tmp_path, "raise OSError('disk full')")
    out = io.StringIO()
    code = SelfTest(qapp, app.parse_args([]), out=out, demo_target=target, demo_path=(str(tmp_path),)).run()
    assert code == 1
    assert lines_of(out)[-1] == "self-test: open FAILED: The demo could not be prepared: OSError: disk full"


def test_an_unreadable_image_fails_the_run_step(qapp: object, qt_model_path: Path, qt_data: dict[str, Path]) -> None:
    out = io.StringIO()
    args = app.parse_args(["--model", str(qt_model_path), "--images", str(qt_data["mvtec"])])
    assert SelfTest(qapp, args, out=out).run() == 1
    last = lines_of(out)[-1]
    assert last.startswith("self-test: run FAILED: 1 image(s) failed, e.g. ")
    assert "broken.png" in last


def test_an_unusable_model_fails_the_open_step(qapp: object, qt_data: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.patchcore"
    bad.write_bytes(b"not a model")
    out = io.StringIO()
    assert SelfTest(qapp, app.parse_args([str(bad), str(qt_data["train"])]), out=out).run() == 1
    last = lines_of(out)[-1]
    assert last.startswith("self-test: open FAILED: ") and "bad.patchcore" in last


def test_bare_paths_take_their_roles(tmp_path: Path) -> None:
    run = tmp_path / "a.PCRUN"
    args = app.parse_args([str(tmp_path / "m.patchcore"), str(tmp_path), str(run)])
    assert (args.model, args.images, args.run) == (str(tmp_path / "m.patchcore"), str(tmp_path), str(run))


def test_two_models_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app.parse_args([str(tmp_path / "a.patchcore"), "--model", str(tmp_path / "b.patchcore")])
    assert exc.value.code == 2
    assert "more than one model" in capsys.readouterr().err


def test_process_age_counts_from_the_process_start() -> None:
    import subprocess
    import sys

    code = "import time; time.sleep(1.5); from patchcore_gui.qt.self_test import process_age_s; print(process_age_s())"
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               timeout=120).stdout)
    assert 1.5 <= age < 60.0
