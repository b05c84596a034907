"""``predict --engine ray`` on a two-node Ray cluster on loopback (issue 15).

One ``ray.cluster_utils.Cluster`` (two nodes of one CPU each) serves the whole module:
starting Ray costs seconds. The tiny EfficientNet-Lite0 model of the test fixtures and
~20 small images keep each run short. What is checked: the Ray engine's CSV and run
file equal the local engine's (scores bit for bit with the same batch size), error rows
carry the local text, a worker process killed mid-run is replaced and every image is
written exactly once, a killed driver resumes without redoing scored images, and every
refusal (unreachable address, resources the cluster lacks, Ray missing) is one line.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray  # the test extra installs it (README: make test)
from PIL import Image
from ray.cluster_utils import Cluster
from tests_helpers import textured, with_defect

from patchcore_gui.cli import main
from patchcore_gui.core.datasets import list_images_with_truth
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.ray_actors import TEST_PID_DIR_ENV
from patchcore_gui.core.ray_cluster import RayOptions, plan_cluster
from patchcore_gui.core.ray_engine import RayScorer
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import TEST_DELAY_ENV, RunFile, RunFileError

N_GOOD = 20
BROKEN = "zz_broken.png"
N_IMAGES = N_GOOD + 1


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The replicas' test-hook folder (pids, delay); in the environment before Ray starts,
    so the raylets, and the workers they start, inherit it."""
    folder = tmp_path_factory.mktemp("ray_hooks")
    old = os.environ.get(TEST_PID_DIR_ENV)
    os.environ[TEST_PID_DIR_ENV] = str(folder)
    yield folder
    if old is None:
        os.environ.pop(TEST_PID_DIR_ENV, None)
    else:
        os.environ[TEST_PID_DIR_ENV] = old


@pytest.fixture(scope="module")
def cluster(hooks: Path) -> Cluster:
    """Two nodes of one CPU each on loopback, this process connected as the driver."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray_imgs")
    rng = np.random.default_rng(15)
    for i in range(N_GOOD):
        img = textured(rng, 56, 60)
        if i % 4 == 0:
            img = with_defect(img, 10 + i % 20, 12, size=10)
        Image.fromarray(img).save(root / f"img_{i:03d}.png")
    (root / BROKEN).write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return root


@pytest.fixture(scope="module")
def local_ref(tiny_model_path: Path, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The local engine's run (batch 2) and CSV over the folder: what Ray must reproduce."""
    out = tmp_path_factory.mktemp("ray_ref")
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--batch-size", "2",
                 "--run", str(out / "local.pcrun"), "--output", str(out / "local.csv"), "--quiet"]) == 0
    with RunFile.open(out / "local.pcrun", readonly=True) as rf:
        return {"csv": (out / "local.csv").read_text(), "scores": rf.columns()["score"], "errors": rf.errors(),
                "grids": [rf.grid(i) for i in range(len(rf))]}


def _batches(run: Path) -> tuple[list[int], dict[int, int]]:
    """(rows per committed batch, image index -> batch it was written in) straight from the file."""
    con = sqlite3.connect(f"file:{run}?mode=ro", uri=True)
    try:
        counts = [r[0] for r in con.execute("SELECT count FROM batches ORDER BY seq")]
        written = dict(con.execute("SELECT idx, batch FROM images WHERE done = 1").fetchall())
    finally:
        con.close()
    return counts, written


def _max_rel(got: np.ndarray, ref: np.ndarray) -> float:
    """Largest relative difference of two score columns; NaN (error rows) must sit alike."""
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = np.isfinite(ref)
    return float(np.max(np.abs(got[ok].astype(np.float64) - ref[ok]) / np.abs(ref[ok])))


def _same_csv(text: str, ref: str) -> None:
    """Same header, rows, paths, verdicts and errors; numbers as printed (6 digits) within 1e-5."""
    rows, want = [r.split(",") for r in text.splitlines()], [r.split(",") for r in ref.splitlines()]
    assert len(rows) == len(want) == N_IMAGES + 1 and rows[0] == want[0]
    for a, b in zip(rows[1:], want[1:], strict=True):
        assert (a[0], a[3], a[4]) == (b[0], b[3], b[4])
        for x, y in zip(a[1:3], b[1:3], strict=True):
            assert (x == y == "") or abs(float(x) - float(y)) <= 1e-5 * abs(float(y))


def _ray_args(cluster: Cluster, *more: str) -> list[str]:
    return ["--engine", "ray", "--ray-address", cluster.address, *more]


def test_scores_csv_and_error_rows_equal_the_local_engine(cluster: Cluster, tiny_model_path: Path, folder: Path,
                                                          local_ref: dict, tmp_path: Path) -> None:
    run, csv = tmp_path / "ray.pcrun", tmp_path / "ray.csv"
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--batch-size", "2",
                 "--run", str(run), "--output", str(csv), "--quiet", *_ray_args(cluster, "--workers", "2")]) == 0
    _same_csv(csv.read_text(), local_ref["csv"])
    with RunFile.open(run, readonly=True) as rf:
        got = rf.columns()
        assert rf.status == "finished"
        assert rf.settings["engine"] == "ray" and rf.settings["workers"] == 2
        errors = rf.errors()
        grids = [rf.grid(i) for i in range(len(rf))]
    ref = local_ref["scores"]
    ok = np.isfinite(ref)
    assert ok.sum() == N_GOOD
    # Same model, precision and batches. The actors here run torch on one thread (one CPU
    # per node), this process on two: measured max relative difference 2e-7 (summation
    # order); with equal thread counts the numbers are identical (test_ray_actors.py).
    # The bound is 1e-6.
    assert _max_rel(got["score"], ref) <= 1e-6
    assert errors == local_ref["errors"] and len(errors) == 1
    (bad,) = errors
    assert errors[bad] == "not a recognised image format"  # the local decoder's words
    for g, r in zip(grids, local_ref["grids"], strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            assert np.allclose(g.astype(np.float32), r.astype(np.float32), rtol=2e-3, atol=0)  # float16 grids: 1 ulp
    counts, written = _batches(run)
    assert sum(counts) == N_IMAGES and sorted(written) == list(range(N_IMAGES))


def test_a_killed_worker_is_replaced_and_every_image_is_written_once(
        cluster: Cluster, hooks: Path, tiny_model_path: Path, folder: Path, local_ref: dict, tmp_path: Path) -> None:
    for f in hooks.iterdir():
        f.unlink()
    (hooks / "delay").write_text("0.4")  # ~10 batches of 2 over 2 workers: a few seconds to land a kill in
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    run = tmp_path / "killed_worker.pcrun"
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with RunFile.open(run, readonly=True) as ro:
                    if ro.batch_count() >= 1:
                        break
            except RunFileError:
                pass
            time.sleep(0.05)
        pids = [int(p.name) for p in hooks.iterdir() if p.name.isdigit()]
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_one_worker)
    try:
        plan = plan_cluster(ray, RayOptions(address=cluster.address, workers=2))
        killer.start()
        outcome = predict_into_run(model, list_images_with_truth(folder), run, batch_size=2,
                                   scorer=RayScorer(ray, plan, "cpu"), grid_dtype=np.float32)
    finally:
        killer.join()
        (hooks / "delay").unlink()
    assert killed, "no worker was running to kill"
    assert outcome.status == "finished" and outcome.done == N_IMAGES
    started = [int(p.name) for p in hooks.iterdir() if p.name.isdigit()]
    assert len(started) >= 3  # two replicas, and one more in place of the killed one
    counts, written = _batches(run)
    assert sum(counts) == N_IMAGES  # nothing written twice
    assert sorted(written) == list(range(N_IMAGES))
    with RunFile.open(run, readonly=True) as rf:
        got = rf.columns()["score"]
    assert _max_rel(got, local_ref["scores"]) <= 1e-6


def test_the_driver_and_the_replicas_share_a_run_and_write_each_image_once(
        cluster: Cluster, hooks: Path, tiny_model_path: Path, folder: Path, local_ref: dict, tmp_path: Path) -> None:
    """A local instance's driver scores from the last batch back while the replicas work from
    the first (core/ray_lead_in.py; the loopback cluster shares this machine's files as a
    local instance does). Both paced here, so that each scores part of the run."""
    for f in hooks.iterdir():
        f.unlink()
    (hooks / "delay").write_text("0.3")
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    run = tmp_path / "shared.pcrun"
    claims_before = set(Path(tempfile.gettempdir()).glob("patchcore-claims-*"))
    try:
        plan = plan_cluster(ray, RayOptions(address=cluster.address, workers=1))
        scorer = RayScorer(ray, plan, "cpu", driver_threads=1, lead_in_pause_s=0.6)
        outcome = predict_into_run(model, list_images_with_truth(folder), run, batch_size=2, scorer=scorer,
                                   grid_dtype=np.float32)
    finally:
        (hooks / "delay").unlink()
    assert outcome.status == "finished" and outcome.done == N_IMAGES
    assert 0 < scorer.driver_scored < N_IMAGES  # both scored
    counts, written = _batches(run)
    assert sum(counts) == N_IMAGES and sorted(written) == list(range(N_IMAGES))  # each image once
    with RunFile.open(run, readonly=True) as rf:
        got, errors = rf.columns()["score"], rf.errors()
    assert _max_rel(got, local_ref["scores"]) <= 1e-6  # one torch thread on both sides here, two in the reference
    assert errors == local_ref["errors"]
    assert set(Path(tempfile.gettempdir()).glob("patchcore-claims-*")) <= claims_before  # its claims file is gone


def test_a_killed_driver_resumes_without_redoing_scored_images(
        cluster: Cluster, tiny_model_path: Path, folder: Path, local_ref: dict, tmp_path: Path) -> None:
    run = tmp_path / "killed_driver.pcrun"
    cmd = [sys.executable, "-m", "patchcore_gui.cli", "predict", "--model", str(tiny_model_path),
           "--images", str(folder), "--batch-size", "2", "--run", str(run), "--quiet",
           *_ray_args(cluster, "--workers", "1")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, TEST_DELAY_ENV: "0.7"})  # the driver commits slowly
    try:
        deadline = time.monotonic() + 180
        committed = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with RunFile.open(run, readonly=True) as ro:
                    committed = ro.batch_count()
            except RunFileError:
                committed = 0
            if committed >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be interrupted: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before_counts, before = _batches(run)
    assert 0 < len(before) < N_IMAGES
    assert main(["predict", "--run", str(run), "--resume", "--quiet", "--output", str(tmp_path / "resumed.csv"),
                 *_ray_args(cluster)]) == 0
    counts, written = _batches(run)
    assert counts[: len(before_counts)] == before_counts
    assert sum(counts) == N_IMAGES  # the resumed run scored only the rest
    assert {i: written[i] for i in before} == before  # images scored before the kill were not redone
    assert sorted(written) == list(range(N_IMAGES))
    _same_csv((tmp_path / "resumed.csv").read_text(), local_ref["csv"])
    with RunFile.open(run, readonly=True) as rf:
        assert rf.status == "finished"
        assert [s["resume"] for s in rf.meta["sessions"]] == [False, True]


def test_a_uri_folder_scores_and_resumes_with_its_uris(cluster: Cluster, tiny_model_path: Path, folder: Path,
                                                      local_ref: dict, tmp_path: Path) -> None:
    """--images file://... (pyarrow's LocalFileSystem, as s3:// goes through S3's): the replicas fetch
    the images, the run file and the CSV keep the URIs, and a resume reads them back intact."""
    from urllib.parse import unquote, urlsplit

    from patchcore_gui.core.uri_listing import list_uri_images

    image_set, _ = list_uri_images(folder.as_uri())
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    run, stop = tmp_path / "uri.pcrun", threading.Event()
    plan = plan_cluster(ray, RayOptions(address=cluster.address, workers=1))
    part = predict_into_run(model, image_set, run, batch_size=2, scorer=RayScorer(ray, plan, "cpu"), cancel=stop,
                            on_batch=lambda r: stop.set(), grid_dtype=np.float32)
    assert part.status == "cancelled" and 0 < part.done < N_IMAGES
    assert main(["predict", "--run", str(run), "--resume", "--quiet", "--output", str(tmp_path / "uri.csv"),
                 *_ray_args(cluster, "--workers", "2")]) == 0
    rows = [r.split(",") for r in (tmp_path / "uri.csv").read_text().splitlines()]
    assert all(r[0].startswith("file:///") for r in rows[1:])
    as_paths = "\n".join(",".join([unquote(urlsplit(r[0]).path) if k else r[0], *r[1:]]) for k, r in enumerate(rows))
    _same_csv(as_paths, local_ref["csv"])  # same scores, verdicts and error rows as the local folder
    with RunFile.open(run, readonly=True) as rf:
        assert rf.status == "finished" and rf.paths() == [str(p) for p in image_set.paths]


def test_without_an_address_a_new_local_instance_starts_beside_a_running_cluster(
        cluster: Cluster, tiny_model_path: Path, folder: Path, local_ref: dict, tmp_path: Path) -> None:
    """A Ray already running on the machine (here the test cluster, also named by RAY_ADDRESS)
    is not joined without --ray-address: ray.init() alone joined it, and refused the local
    instance's CPU count ('When connecting to an existing cluster, num_cpus ... must not be provided')."""
    run, csv = tmp_path / "own.pcrun", tmp_path / "own.csv"
    cmd = [sys.executable, "-m", "patchcore_gui.cli", "predict", "--model", str(tiny_model_path),
           "--images", str(folder), "--batch-size", "2", "--run", str(run), "--output", str(csv), "--quiet",
           "--engine", "ray"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ADDRESS": cluster.address})
    assert proc.returncode == 0, proc.stderr[-2000:]
    _same_csv(csv.read_text(), local_ref["csv"])
    with RunFile.open(run, readonly=True) as rf:
        assert rf.settings["ray_address"] == "local" and rf.settings["driver_scores"] is True
        # Sized from this machine's CPUs (not the cluster's): a replica per CPU but the one
        # the driver scores on, one torch thread each.
        assert (rf.settings["workers"], rf.settings["threads_per_worker"]) == (max(1, (os.cpu_count() or 1) - 1), 1)


# --------------------------------------------------------------------------- refusals, one line each


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    t0 = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t0 < 10  # never a hang
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_an_unreachable_address_is_one_line_within_seconds(cluster: Cluster, tiny_model_path: Path, folder: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = _one_line_error(capsys, ["predict", "--model", str(tiny_model_path), "--images", str(folder), "--quiet",
                                   "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"])
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err


@pytest.mark.parametrize(("more", "words"), [
    (["--gpus-per-worker", "1"], "has no GPU"),
    (["--workers", "3"], "--workers 3 does not fit"),
    (["--cpus-per-worker", "2"], "no node of the Ray cluster has 2 CPU(s)"),
])
def test_resources_the_cluster_lacks_are_refused_before_starting(
        cluster: Cluster, tiny_model_path: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        more: list[str], words: str) -> None:
    err = _one_line_error(capsys, ["predict", "--model", str(tiny_model_path), "--images", str(folder), "--quiet",
                                   "--run", str(tmp_path / "r.pcrun"), *_ray_args(cluster, *more)])
    assert words in err and ("2 CPUs" in err or "CPU(s) free" in err)
    assert not (tmp_path / "r.pcrun").exists()  # refused before anything was written


def test_missing_ray_names_the_extra(tiny_model_path: Path, folder: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    err = _one_line_error(capsys, ["predict", "--model", str(tiny_model_path), "--images", str(folder), "--quiet",
                                   "--engine", "ray"])
    assert "install the ray extra" in err and "pip install -e '.[ray]'" in err


def test_ray_options_need_the_ray_engine(tiny_model_path: Path, folder: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["predict", "--model", str(tiny_model_path), "--images", str(folder), "--quiet",
                                   "--workers", "2"])
    assert "--workers only apply with --engine ray" in err
