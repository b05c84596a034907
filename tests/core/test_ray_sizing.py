"""Sizing the Ray engine's workers (issue 15 point 6), and its default on this machine.

``plan_cluster`` is checked against made-up clusters (no Ray needed); the last test runs
``patchcore predict --engine ray`` exactly as an operator would on a laptop: no address,
no --workers, a local Ray instance started and stopped inside the command. The issue
measured a deadlock on this 2-core machine when model actors took every CPU and Ray
Data's read tasks had none; the engine's dataset is made on the driver (no read tasks),
and the default, a replica per CPU, must finish.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured

from patchcore_gui.cli import main
from patchcore_gui.core.ray_cluster import (
    RayEngineError,
    RayOptions,
    _host_port,
    local_plan,
    plan_cluster,
)


class FakeRay:
    """What plan_cluster asks of ``ray``: the alive nodes and their resources."""

    def __init__(self, *nodes: dict[str, float]) -> None:
        self._nodes = [{"Alive": True, "Resources": dict(r)} for r in nodes]
        self._nodes.append({"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}})  # a dead node counts for nothing

    def nodes(self) -> list[dict]:
        return self._nodes


def test_a_local_instance_gets_a_one_thread_replica_per_cpu() -> None:
    plan = plan_cluster(FakeRay({"CPU": 2.0}), RayOptions())
    assert (plan.workers, plan.cpus_per_worker, plan.threads) == (2, 1.0, 1)
    plan = plan_cluster(FakeRay({"CPU": 16.0}), RayOptions())
    assert (plan.workers, plan.threads) == (16, 1)
    plan = plan_cluster(FakeRay({"CPU": 1.0}), RayOptions())
    assert (plan.workers, plan.threads) == (1, 1)
    # --workers 1 on a local instance: the lone replica runs torch on every core, as the local engine.
    plan = plan_cluster(FakeRay({"CPU": 2.0}), RayOptions(workers=1))
    assert (plan.workers, plan.threads) == (1, 2)


def test_a_driver_that_scores_counts_as_a_replica_on_a_local_instance() -> None:
    # The driver scores beside a local instance's replicas (core/ray_lead_in.py): one CPU is its.
    plan = plan_cluster(FakeRay({"CPU": 2.0}), RayOptions(), driver=True)
    assert (plan.workers, plan.threads) == (1, 1)
    plan = plan_cluster(FakeRay({"CPU": 16.0}), RayOptions(), driver=True)
    assert (plan.workers, plan.threads) == (15, 1)
    plan = plan_cluster(FakeRay({"CPU": 1.0}), RayOptions(), driver=True)
    assert (plan.workers, plan.threads) == (1, 1)
    plan = plan_cluster(FakeRay({"CPU": 8.0}), RayOptions(workers=2), driver=True)
    assert (plan.workers, plan.threads) == (2, 2)  # 8 cores over two replicas and the driver
    # The plan is known before Ray starts (the driver starts scoring then), and is the same.
    assert local_plan(RayOptions(num_cpus=16)) == plan_cluster(FakeRay({"CPU": 16.0}), RayOptions(), driver=True)


def test_a_cluster_by_default_leaves_a_cpu_free() -> None:
    plan = plan_cluster(FakeRay({"CPU": 2.0}), RayOptions(address="head:6379"))
    assert (plan.workers, plan.threads) == (1, 1)
    plan = plan_cluster(FakeRay({"CPU": 1.0}), RayOptions(address="head:6379"))
    assert (plan.workers, plan.threads) == (1, 1)  # one CPU: one actor, still runs (no read tasks)


def test_an_existing_cluster_keeps_one_thread_per_reserved_cpu() -> None:
    plan = plan_cluster(FakeRay({"CPU": 8.0}, {"CPU": 8.0}), RayOptions(address="head:6379"))
    assert (plan.workers, plan.threads, plan.nodes, plan.cluster_cpus) == (15, 1, 2, 16.0)
    # --cpus-per-worker 2: two CPUs reserved and two torch threads each (a local run's arithmetic).
    plan = plan_cluster(FakeRay({"CPU": 8.0}, {"CPU": 8.0}),
                        RayOptions(address="head:6379", cpus_per_worker=2.0, threads=2))
    assert (plan.workers, plan.threads) == (7, 2)


def test_gpu_workers_are_sized_by_gpus_per_node() -> None:
    plan = plan_cluster(FakeRay({"CPU": 4.0, "GPU": 2.0}, {"CPU": 4.0}), RayOptions(gpus_per_worker=0.5))
    assert plan.workers == 4  # two GPUs x two replicas each; the GPU-less node holds none
    with pytest.raises(RayEngineError, match="--workers 5 does not fit"):
        plan_cluster(FakeRay({"CPU": 4.0, "GPU": 2.0}, {"CPU": 4.0}), RayOptions(workers=5, gpus_per_worker=0.5))


def test_workers_must_fit_on_single_nodes() -> None:
    # Three CPUs in all, but a 2-CPU worker fits only on the node with two.
    with pytest.raises(RayEngineError, match="holds 1 worker"):
        plan_cluster(FakeRay({"CPU": 2.0}, {"CPU": 1.0}), RayOptions(workers=2, cpus_per_worker=2.0))
    with pytest.raises(RayEngineError, match="has no GPU"):
        plan_cluster(FakeRay({"CPU": 2.0}), RayOptions(gpus_per_worker=1.0))
    with pytest.raises(RayEngineError, match="no node of the Ray cluster has 4 CPU"):
        plan_cluster(FakeRay({"CPU": 2.0}), RayOptions(cpus_per_worker=4.0))


def test_addresses_are_parsed_for_the_reachability_check() -> None:
    assert _host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert _host_port("ray://head.local:10001") == ("head.local", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port("auto") is None


def test_the_default_local_instance_finishes_on_this_machine(tiny_model_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(6)
    for i in range(6):
        Image.fromarray(textured(rng, 48, 52)).save(folder / f"i{i}.png")
    out = tmp_path / "out.csv"
    # A deadlock would hang: the timeout turns it into a failure.
    proc = subprocess.run([sys.executable, "-m", "patchcore_gui.cli", "predict", "--model", str(tiny_model_path),
                           "--images", str(folder), "--engine", "ray", "--output", str(out),
                           "--maps-out", str(tmp_path / "ray.npz"), "--quiet"],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    rows = [r.split(",") for r in out.read_text().splitlines()]
    assert len(rows) == 7 and all(r[3] in ("OK", "NG") for r in rows[1:])
    # Without a run file the CSV is kept as scores only and written in listing order: the
    # local engine's file. The replicas run torch on one thread each (one per CPU), this
    # process on all cores: the same numbers to the last digits (1e-6; identical with equal
    # thread counts, test_ray_actors.py), so the 6 printed digits agree within their rounding.
    local = tmp_path / "local.csv"
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--output", str(local),
                 "--maps-out", str(tmp_path / "local.npz"), "--quiet"]) == 0
    want_rows = [r.split(",") for r in local.read_text().splitlines()]
    assert [(r[0], r[3], r[4]) for r in rows] == [(r[0], r[3], r[4]) for r in want_rows]
    for a, b in zip(rows[1:], want_rows[1:], strict=True):
        assert abs(float(a[1]) - float(b[1])) <= 1e-5 * abs(float(b[1]))
    with np.load(tmp_path / "ray.npz") as got, np.load(tmp_path / "local.npz") as want:
        assert got["paths"].tolist() == want["paths"].tolist()
        assert got["maps"].shape == (6, 64, 64)
        assert np.allclose(got["maps"], want["maps"], rtol=1e-5, atol=1e-6 * float(np.abs(want["maps"]).max()))
    # Ray Data's progress and "execution finished" lines stay out of the command's output.
    assert "Dataset" not in proc.stderr and "Progress bars" not in proc.stderr


def test_an_address_that_answers_but_is_not_ray_is_one_line(tiny_model_path: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as srv:  # accepts connections, never speaks: ray.init alone would retry for minutes
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        code = ("import sys, patchcore_gui.core.ray_cluster as rc; rc.JOIN_TIMEOUT_S = 3.0\n"
                "from patchcore_gui.cli import main\n"
                "sys.exit(main(sys.argv[1:]))")
        proc = subprocess.run([sys.executable, "-c", code, "predict", "--model", str(tiny_model_path),
                               "--images", str(tmp_path), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
                               "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    ours = [line for line in proc.stderr.splitlines() if line.startswith("patchcore: error:")]
    assert ours == [f"patchcore: error: no Ray cluster answered at 127.0.0.1:{port} within 3 s (something "
                    "listens there, but not a Ray head; check the address and port)"]
