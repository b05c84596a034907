"""Sizing the Ray engine's workers (issue 15 point 6), and its default on this machine.

``plan_cluster`` is checked against made-up clusters (no Ray needed); the last test runs
``patchcore predict --engine ray`` exactly as an operator would on a laptop: no address,
no --workers, a local Ray instance started and stopped inside the command. On a 2-core
machine model actors that take every CPU leave none for Ray Data (the deadlock the issue
measured); the default must finish.
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
from patchcore_gui.core.ray_cluster import RayEngineError, RayOptions, _host_port, plan_cluster


class FakeRay:
    """What plan_cluster asks of ``ray``: the alive nodes and their resources."""

    def __init__(self, *nodes: dict[str, float]) -> None:
        self._nodes = [{"Alive": True, "Resources": dict(r)} for r in nodes]
        self._nodes.append({"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}})  # a dead node counts for nothing

    def nodes(self) -> list[dict]:
        return self._nodes


def test_default_leaves_a_cpu_free_and_a_lone_local_actor_gets_every_core() -> None:
    plan = plan_cluster(FakeRay({"CPU": 2.0}), RayOptions())
    assert (plan.workers, plan.cpus_per_worker, plan.threads) == (1, 1.0, 2)
    plan = plan_cluster(FakeRay({"CPU": 16.0}), RayOptions())
    assert (plan.workers, plan.threads) == (15, 1)
    plan = plan_cluster(FakeRay({"CPU": 1.0}), RayOptions())
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
    rows = out.read_text().splitlines()
    assert len(rows) == 7 and all(r.split(",")[3] in ("OK", "NG") for r in rows[1:])
    # Without a run file the CSV is kept as scores only and written in listing order: the
    # local engine's file. The lone local actor runs torch on both cores, as this process
    # does, so the numbers are the same digits.
    local = tmp_path / "local.csv"
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--output", str(local),
                 "--maps-out", str(tmp_path / "local.npz"), "--quiet"]) == 0
    assert out.read_text() == local.read_text()
    with np.load(tmp_path / "ray.npz") as got, np.load(tmp_path / "local.npz") as want:
        assert got["paths"].tolist() == want["paths"].tolist()
        assert got["maps"].shape == (6, 64, 64) and np.array_equal(got["maps"], want["maps"])
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
