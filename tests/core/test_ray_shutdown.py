"""A local Ray instance stops without waiting on its autoscaler monitor (``ray_cluster``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from patchcore_gui.core import ray_cluster
from patchcore_gui.core.ray_cluster import stop_autoscaler_monitor

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="children are found through /proc (Linux)")

SLEEP = "import time; time.sleep(60)"


def _spawn(tmp_path, relative: str) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    """A sleeping child of this process whose command line runs ``tmp_path/relative``."""
    script = tmp_path / relative
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SLEEP)
    return subprocess.Popen([sys.executable, "-u", str(script), "--logs-dir=/nowhere"])


def _gone(proc: subprocess.Popen, within: float = 10.0) -> bool:
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_child_processes_lists_children_with_their_argv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    child = _spawn(tmp_path, "some dir (x)/child.py")  # spaces and parentheses in the name
    try:
        found = dict(ray_cluster._child_processes(os.getpid()))
        assert child.pid in found
        assert found[child.pid][-2:] == [str(tmp_path / "some dir (x)/child.py"), "--logs-dir=/nowhere"]
        assert all(pid != os.getpid() for pid in found)
    finally:
        child.kill()
        child.wait()


def test_kills_only_a_monitor_child(tmp_path) -> None:  # type: ignore[no-untyped-def]
    monitor = _spawn(tmp_path / "ray", "autoscaler/_private/monitor.py")
    log_monitor = _spawn(tmp_path / "ray", "_private/log_monitor.py")
    other = _spawn(tmp_path, "monitor.py")
    try:
        time.sleep(0.2)
        assert stop_autoscaler_monitor() == 1
        assert _gone(monitor)
        assert monitor.returncode == -9
        assert log_monitor.poll() is None and other.poll() is None
        assert stop_autoscaler_monitor() == 0
    finally:
        for p in (monitor, log_monitor, other):
            p.kill()
            p.wait()


def test_local_instance_monitor_found_and_everything_stops() -> None:
    """On the installed Ray: the local instance has one monitor child, found by its script,
    and when the block ends no child of the instance is left."""
    code = (
        "import os, sys, time\n"
        "from patchcore_gui.core import ray_cluster as rc\n"
        "found = []\n"
        "orig = rc.stop_autoscaler_monitor\n"
        "def counted():\n"
        "    n = orig(); found.append(n); return n\n"
        "rc.stop_autoscaler_monitor = counted\n"
        "with rc.ray_running(rc.RayOptions(num_cpus=1)) as ray:\n"
        "    assert ray.is_initialized()\n"
        "left = [argv for _, argv in rc._child_processes(os.getpid())]\n"
        "print(found, len(left), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == "[1] 0"
