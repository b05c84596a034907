"""The driver's lead-in on a local Ray instance (core/ray_lead_in.py), without Ray.

The claims file decides who scores each engine batch: the driver from the end until it
meets a batch a replica took, the replicas everything the driver did not take (again on
a retry). The lead-in scores its batches exactly as a replica (and the local engine)
does. And what Ray prints while it runs stays off standard output, where the CSV goes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests_helpers import textured

from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.ray_actors import ModelReplica
from patchcore_gui.core.ray_cluster import backend_errors_silenced, ray_prints_to_stderr
from patchcore_gui.core.ray_engine import discard_lead_in, engine_batches, lead_in
from patchcore_gui.core.ray_lead_in import DRIVER, FREE, REPLICA, Claims


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("lead_in")
    rng = np.random.default_rng(8)
    out = []
    for i in range(9):
        p = root / f"i{i}.png"
        Image.fromarray(textured(rng, 50, 54)).save(p)
        out.append(p)
    (root / "broken.png").write_bytes(b"GIF89a nothing")
    return [*out, root / "broken.png"]


def test_the_driver_stops_where_a_replica_took_a_batch(tmp_path: Path) -> None:
    claims = Claims.create(tmp_path / "c", 6)
    assert claims.take_for_replica([0, 1]) == [True, True]
    assert claims.take_for_driver(5) and claims.take_for_driver(4)
    assert not claims.take_for_driver(4)  # taken already: by itself, but never twice
    assert claims.take_for_replica([2, 3, 4]) == [True, True, False]  # the driver's batch is skipped
    assert not claims.take_for_driver(3)  # where they meet, the driver stops
    assert claims.states() == bytes([REPLICA, REPLICA, REPLICA, REPLICA, DRIVER, DRIVER])


def test_a_replica_reads_and_writes_only_its_block(tmp_path: Path) -> None:
    claims = Claims.create(tmp_path / "c", 10)
    assert claims.take_for_driver(7)
    assert claims.take_for_replica([]) == []
    assert claims.take_for_replica([8, 6, 7]) == [True, True, False]  # any order, mid-file
    assert claims.states() == bytes([FREE] * 6 + [REPLICA, DRIVER, REPLICA, FREE])


def test_a_retried_block_is_scored_again_but_never_a_driver_batch(tmp_path: Path) -> None:
    claims = Claims.create(tmp_path / "c", 4)
    assert claims.take_for_replica([0, 1]) == [True, True]
    assert claims.take_for_driver(3)
    # Ray retries a dead replica's block: its batches were taken, their results lost.
    assert claims.take_for_replica([0, 1]) == [True, True]
    assert claims.take_for_replica([2, 3]) == [True, False]
    assert claims.states()[2] == REPLICA and FREE not in claims.states()


def test_the_lead_in_scores_from_the_end_as_the_local_engine_does(tiny_model_path: Path,
                                                                  images: list[Path]) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the lead-in's count: the same arithmetic, the same numbers
    try:
        ref = list(iter_predict(model, images, batch_size=3, grid_dtype=np.float32))
    finally:
        torch.set_num_threads(threads)
    lead = lead_in(model, images, batch_size=3, grid_dtype=np.float32, threads=1)
    assert lead is not None
    assert lead.claims.take_for_replica([0]) == [True]  # a replica has the first batch
    lead.start()
    got = []
    while True:
        kind, item = lead.results.get(timeout=60)
        if kind == "lead-end":
            assert item is None
            break
        got.append(item)
    lead.join()
    # Batches 3, 2, 1 (the last first, each the local engine's), then it met the replica's.
    assert [r.indices.tolist() for r in got] == [[9], [6, 7, 8], [3, 4, 5]]
    assert lead.scored == 7
    for r in got:
        (want,) = [w for w in ref if w.indices.tolist() == r.indices.tolist()]
        assert np.array_equal(r.scores, want.scores, equal_nan=True)
        assert np.array_equal(r.grids, want.grids, equal_nan=True)
        assert r.errors == want.errors and r.paths == [str(images[i]) for i in r.indices]
    assert got[0].errors == ["not a recognised image format"]
    assert torch.get_num_threads() == threads  # the driver's own count is back
    path = lead.claims.path
    discard_lead_in(lead)
    assert not os.path.exists(path)


def test_a_stopped_lead_in_leaves_the_rest_to_the_replicas(tiny_model_path: Path, images: list[Path]) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    lead = lead_in(model, images, batch_size=2, grid_dtype=np.float32, threads=1, pause_s=0.3)
    assert lead is not None
    lead.start()
    time.sleep(0.1)
    lead.stop()
    lead.join(timeout=30)
    states = lead.claims.states()
    assert states.count(DRIVER) <= 1 and states.count(FREE) >= 4
    discard_lead_in(lead)


def test_a_replica_skips_the_batches_the_driver_took(tiny_model_path: Path, images: list[Path],
                                                     tmp_path: Path) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    names = [str(p) for p in images]
    rows = engine_batches(np.arange(len(names)), names, 4)  # batches 0..2
    claims = Claims.create(tmp_path / "c", len(rows))
    assert claims.take_for_driver(2) and claims.take_for_driver(1)
    replica = ModelReplica([tiny_model_path.read_bytes()], "cpu", model.precision, threads=0, grid_dtype="float32",
                           batch_size=4, claims=claims.path)
    block = {k: np.array([r[k] for r in rows], dtype=object) for k in ("indices", "paths")}
    block["batch"] = np.array([r["batch"] for r in rows])
    out = replica(block)
    assert out["index"].tolist() == [0, 1, 2, 3]  # batch 0 only
    ref = next(iter(iter_predict(model, images[:4], batch_size=4, grid_dtype=np.float32)))
    assert np.array_equal(out["score"], ref.scores)
    # A block the driver took whole comes back empty, in the columns' shapes.
    sub = {k: v[1:] for k, v in block.items()}
    empty = replica(sub)
    assert empty["index"].shape == (0,) and empty["grid"].shape == (0, *ref.grids.shape[1:])
    # The run is over (the driver removed the file): nothing left to score.
    os.unlink(claims.path)
    assert replica(block)["index"].shape == (0,)


def test_ray_prints_go_to_stderr_and_a_stopped_replica_notice_is_dropped(
        capsys: pytest.CaptureFixture[str]) -> None:
    with ray_prints_to_stderr():
        print("(raylet) A worker died or was killed while executing a task")
        print("(raylet) Task MapWorker(...).submit failed. Error: The actor is dead because it was killed by `ray.kill`.")
    print("path,score")
    out, err = capsys.readouterr()
    assert out == "path,score\n"
    assert err == "(raylet) A worker died or was killed while executing a task\n"


def test_the_backend_log_level_announcement_is_dropped(capfd: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_BACKEND_LOG_LEVEL", raising=False)
    with backend_errors_silenced():
        assert os.environ["RAY_BACKEND_LOG_LEVEL"] == "fatal"
        os.write(2, b"[2026 I 1 1] logging.cc:303: Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL to 3\n")
        os.write(2, b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"
    # A level the user set is left alone, and nothing is held back.
    monkeypatch.setenv("RAY_BACKEND_LOG_LEVEL", "debug")
    with backend_errors_silenced():
        os.write(2, b"Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL to -1\n")
    assert "Set ray log level" in capfd.readouterr().err
