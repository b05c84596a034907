"""Kill ``patchcore predict --run`` mid-run (SIGKILL), resume it, and get identical scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured, with_defect

from patchcore_gui.cli import main
from patchcore_gui.core.datasets import scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import (
    TEST_DELAY_ENV,
    RunFile,
    RunFileError,
    RunLockedError,
)

N_IMAGES = 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume_imgs")
    rng = np.random.default_rng(5)
    for i in range(N_IMAGES):
        img = textured(rng, 56, 60)
        if i % 3 == 0:
            img = with_defect(img, 10 + i % 20, 12, size=10)
        Image.fromarray(img).save(root / f"img_{i:03d}.png")
    return root


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "patchcore_gui.cli", "predict", *args, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_run_resumes_to_identical_scores(tiny_model_path: Path, folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "R.sqlite"
    proc = _cli("--model", str(tiny_model_path), "--images", str(folder), "--run", str(run), "--batch-size", "2",
                "--output", str(tmp_path / "first.csv"), env={TEST_DELAY_ENV: "1.0"})  # kill lands well inside a run
    try:
        # Uninterrupted reference, computed while the subprocess starts up.
        model = PatchCoreModel.load(tiny_model_path, device="cpu")
        ref_run = tmp_path / "ref.sqlite"
        predict_into_run(model, scan_folder(folder), ref_run, batch_size=2)
        with RunFile.open(ref_run, readonly=True) as ref:
            expected = ref.columns()["score"]
        assert np.isfinite(expected).all()

        deadline = time.monotonic() + 240
        committed = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with RunFile.open(run, readonly=True) as ro:
                    committed = ro.batch_count()
            except RunFileError:  # not created yet
                committed = 0
            if committed >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be interrupted: {proc.communicate()}"
        assert committed >= 1
        with pytest.raises(RunLockedError, match="another window/process"):
            RunFile.open(run)  # the live CLI holds the writer lock
        with RunFile.open(run, readonly=True) as ro:
            assert not ro.interrupted
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "first.csv").exists()
    with RunFile.open(run, readonly=True) as ro:
        done = ro.done_indices()
        assert ro.status == "running" and ro.interrupted  # killed: nobody wrote a final status
    assert 0 < len(done) < N_IMAGES and len(done) % 2 == 0  # whole batches only
    assert done.tolist() == list(range(len(done)))

    # Resume through the same CLI entry point, in this process (saves a second interpreter start);
    # it takes over the dead process's writer lock.
    assert main(["predict", "--run", str(run), "--resume", "--quiet", "--output", str(tmp_path / "resumed.csv")]) == 0
    with RunFile.open(run, readonly=True) as ro:
        got = ro.columns()
        assert ro.status == "finished"
        assert [s["resume"] for s in ro.meta["sessions"]] == [False, True]
        assert ro.batch_count() == N_IMAGES // 2  # the resumed run did not redo committed batches
    assert got["done"].all()
    assert np.array_equal(got["score"], expected)
    lines = (tmp_path / "resumed.csv").read_text().splitlines()
    assert len(lines) == N_IMAGES + 1 and lines[0].startswith("path,score")
