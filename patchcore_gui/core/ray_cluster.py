"""Reaching Ray for ``predict --engine ray``: start or join a cluster, and size the workers.

Every failure here is a :class:`RayEngineError` with one line, raised within seconds:
Ray missing, an address nobody answers on, a cluster without the CPUs or GPUs asked
for. Ray's own ``ray.init`` retries an unreachable address for minutes, and an actor
that no node can hold waits for ever, so both are checked before Ray is asked.

Sizing (issue 15 point 6): each model actor reserves ``cpus_per_worker`` CPUs (1 by
default) and ``gpus_per_worker`` GPUs. Without ``--workers`` a cluster gets one actor
per CPU but one (at least one actor), so a CPU stays free for Ray Data's own tasks and
the driver; a local instance gets one actor per CPU, each running torch on one thread
(the dataset is made on the driver: there are no read tasks for the actors to starve,
and on 2 cores two 1-thread actors score faster than one on both cores).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: What to install when Ray is missing.
INSTALL_HINT = "install the ray extra: .venv/bin/pip install -e '.[ray]' (ray[data] 2.60)"
#: Seconds to wait for a TCP answer from --ray-address before giving up.
CONNECT_TIMEOUT_S = 5.0
#: Seconds ``ray.init`` may take to join a cluster (about 1 s when the head answers).
JOIN_TIMEOUT_S = 20.0


class RayEngineError(RuntimeError):
    """The Ray engine cannot run as asked; the message is one line for the user."""


@dataclass(frozen=True)
class RayOptions:
    """The ``--engine ray`` options: where, how many replicas, and what each reserves."""

    address: str | None = None  # None: start a local instance inside the command
    workers: int | None = None  # None: sized from the cluster (see module docstring)
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    num_cpus: int | None = None  # a local instance's CPUs (None: this machine's)
    threads: int | None = None  # torch threads per replica (None: see plan_cluster)
    driver_scores: bool = True  # a local instance's driver scores while the replicas start (ray_lead_in)


@dataclass(frozen=True)
class ClusterPlan:
    """How a run uses the cluster: actor count, reservations, torch threads per actor."""

    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    threads: int
    cluster_cpus: float
    cluster_gpus: float
    nodes: int


def import_ray() -> Any:
    """``ray`` with Ray Data, or RayEngineError saying how to install it."""
    # Ray Data's progress bars and "execution finished" lines would mix with the command's
    # own bar and summary; its errors still show (the variable wins over its config).
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    try:
        import ray
        import ray.data  # noqa: F401 - the engine needs Ray Data, not only the core
    except ImportError as exc:
        raise RayEngineError(f"--engine ray needs Ray ({exc.name or 'ray'} is not installed): "
                             f"{INSTALL_HINT}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for "auto" and the like."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise RayEngineError unless something accepts a TCP connection at ``address``."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise RayEngineError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _init_within(ray: Any, kwargs: dict[str, Any], address: str | None, timeout: float) -> None:
    """``ray.init(address=...)`` that gives up after ``timeout`` s with RayEngineError.

    Something that accepts TCP at the address but is not a Ray head (another service,
    a wrong port) makes ``ray.init`` retry for minutes; a watched thread turns that into
    one line.
    """
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            ray.init(logging_level=logging.ERROR, log_to_driver=False, **kwargs)
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)

    where = f" at {address}" if address else ""
    t = threading.Thread(target=start, name="ray-init", daemon=True)
    t.start()
    t.join(timeout)
    if not outcome:
        raise RayEngineError(f"no Ray cluster answered{where} within {timeout:g} s "
                             "(something listens there, but not a Ray head; check the address and port)")
    exc = outcome[0]
    if exc is not None:  # ConnectionError, RuntimeError from Ray: one line
        raise RayEngineError(f"cannot join the Ray cluster{where}: {_first_line(exc)}") from None


#: What Ray's C++ logging says when RAY_BACKEND_LOG_LEVEL is set (once, as Ray starts).
_LEVEL_ANNOUNCEMENT = b"Set ray log level from environment variable"


@contextlib.contextmanager
def backend_errors_silenced() -> Iterator[None]:
    """Around ``ray.init``: the driver's C++ core worker logs only fatal errors to stderr.

    Ray Data's actor pools make it log an error line for every replica it creates
    ("Actor ... has constructor arguments in the object store and max_restarts > 0",
    ray-project/ray#53727; any ``map_batches`` with actors, whatever its arguments),
    on every run. ``RAY_BACKEND_LOG_LEVEL`` (a value the user set wins) is read when
    ``ray.init`` starts the core worker, which then announces it on stderr: that one
    line is dropped from what stderr received meanwhile, the rest is passed on.
    """
    if "RAY_BACKEND_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if _LEVEL_ANNOUNCEMENT not in line]
            if kept:
                os.write(2, b"".join(kept))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def ray_running(options: RayOptions) -> Iterator[Any]:
    """Ray connected for the block: joined at ``options.address``, or a local instance.

    A local instance is started here (no dashboard, this machine's CPUs) and shut down
    at the end; a Ray already initialised in this process (tests, notebooks) is used as
    it is and left running.
    """
    ray = import_ray()
    if options.address:
        check_reachable(options.address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # when ray.data was imported before
    with ray_prints_to_stderr():
        if ray.is_initialized():
            yield ray
            return
        with _ray_connected(ray, options):
            yield ray


@contextlib.contextmanager
def _ray_connected(ray: Any, options: RayOptions) -> Iterator[None]:
    """``ray.init`` for :func:`ray_running` (joined, or a local instance), ``ray.shutdown`` after."""
    if options.address:
        kwargs: dict[str, Any] = {"address": options.address}
    else:
        # "local": a new instance even when this machine runs another (`ray start`, a test
        # cluster) or RAY_ADDRESS is set; ray.init() alone would join that one instead.
        kwargs = {"address": "local", "num_cpus": options.num_cpus or os.cpu_count() or 1,
                  "include_dashboard": False}
    if options.address:
        with backend_errors_silenced():
            _init_within(ray, kwargs, options.address, JOIN_TIMEOUT_S)
    else:
        # A local start runs in this thread: started from another one, the instance's GCS
        # was lost mid-run ("Failed to connect to GCS within 60 seconds", measured).
        try:
            with backend_errors_silenced():
                ray.init(logging_level=logging.ERROR, log_to_driver=False, **kwargs)
        except Exception as exc:  # RuntimeError from Ray: one line
            raise RayEngineError(f"cannot start Ray: {_first_line(exc)}") from None
    try:
        yield
    finally:
        if not options.address:
            stop_autoscaler_monitor()
        ray.shutdown()


#: The command line of the local instance's autoscaler monitor ends in one of these.
_MONITOR_SCRIPTS = ("autoscaler/_private/monitor.py", "autoscaler/v2/monitor.py")


def _child_processes(parent: int) -> Iterator[tuple[int, list[str]]]:
    """``(pid, argv)`` of ``parent``'s child processes, from ``/proc`` (nothing elsewhere)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
                # The fields after the command name, which may hold spaces and parentheses.
                ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
                if ppid != parent:
                    continue
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile, or not ours to read
            yield int(entry.name), argv


def stop_autoscaler_monitor() -> int:
    """Kill the local instance's autoscaler monitor before ``ray.shutdown``; returns how many.

    ``ray.shutdown`` stops the GCS first, then sends SIGTERM to the monitor, whose handler
    reports its own termination to the GCS that is gone and hangs until Ray kills it after
    a grace second (measured: 1.0 of the 1.1-1.4 s ``ray.shutdown`` takes). A local
    instance's monitor has nothing to save (it scales no cluster), so it is killed here
    first; Ray then finds it gone. Only a child of this process whose command line runs
    the monitor script is touched; on systems without ``/proc``, nothing is done.
    """
    import signal

    killed = 0
    for pid, argv in _child_processes(os.getpid()):
        if any(a.replace(os.sep, "/").endswith(_MONITOR_SCRIPTS) for a in argv):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


#: Ray's notice when Ray Data stops its replicas with a block in flight (the run's end,
#: when the driver scored the last batches, or a cancel): nothing the user must know.
_STOPPED_REPLICA_NOTICE = "killed by `ray.kill`"


class _RayPrints(io.TextIOBase):
    """``sys.stdout`` while Ray runs: what is printed goes to ``sys.stderr``.

    Ray's driver prints the error messages its raylets push (a worker died, a task is
    retried) to standard output, where ``predict`` writes its CSV: a message there
    would become the CSV's first line. The notice of a replica stopped on purpose is
    dropped.
    """

    _dropped = False  # the last write was a dropped notice (print() then writes its newline)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        drop = _STOPPED_REPLICA_NOTICE in text or (self._dropped and text == "\n")
        self._dropped = _STOPPED_REPLICA_NOTICE in text
        if not drop:
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def ray_prints_to_stderr() -> Iterator[None]:
    """For the block, ``sys.stdout`` is :class:`_RayPrints` (stdout is restored after)."""
    before = sys.stdout
    sys.stdout = _RayPrints()
    try:
        yield
    finally:
        sys.stdout = before


def starts_local_instance(options: RayOptions) -> bool:
    """True when :func:`ray_running` will start a Ray instance of its own on this machine."""
    ray = sys.modules.get("ray")
    return not options.address and not (ray is not None and ray.is_initialized())


def local_plan(options: RayOptions, driver: bool = True) -> ClusterPlan:
    """The plan :func:`plan_cluster` makes for the local instance :func:`ray_running` starts,
    known before it starts (the driver's lead-in runs on the replicas' thread count)."""
    return plan_nodes([{"CPU": float(options.num_cpus or os.cpu_count() or 1)}], options, driver)


def plan_cluster(ray: Any, options: RayOptions, driver: bool = False) -> ClusterPlan:
    """Check the cluster can hold the workers asked for and size them; RayEngineError if not.

    Each actor must fit on one node, and all of them on the cluster's nodes together;
    an actor that fits nowhere would wait for ever. ``driver``: the driver scores too, on
    this machine's cores (a local instance: ``core/ray_lead_in.py``).
    """
    return plan_nodes([n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")], options, driver)


def plan_nodes(nodes: list[dict[str, float]], options: RayOptions, driver: bool = False) -> ClusterPlan:
    """:func:`plan_cluster` for the alive nodes' resources (``{"CPU": 8.0, "GPU": 1.0}`` each)."""
    cpw, gpw = float(options.cpus_per_worker), float(options.gpus_per_worker)
    if cpw <= 0 or gpw < 0:
        raise RayEngineError("--gpus-per-worker must be >= 0 and CPUs per worker > 0")
    cpus = sum(float(r.get("CPU", 0)) for r in nodes)
    gpus = sum(float(r.get("GPU", 0)) for r in nodes)
    if gpw > 0 and gpus <= 0:
        raise RayEngineError(f"--gpus-per-worker {gpw:g} asked for, but the Ray cluster has no GPU "
                             f"({len(nodes)} node(s), {cpus:g} CPUs)")
    # Actors each node can hold (whole reservations only, as Ray places them).
    per_node = []
    for r in nodes:
        k = int(float(r.get("CPU", 0)) // cpw)
        if gpw > 0:
            k = min(k, int(float(r.get("GPU", 0)) // gpw))
        per_node.append(k)
    fits = sum(per_node)
    if fits < 1:
        raise RayEngineError(f"no node of the Ray cluster has {cpw:g} CPU(s)"
                             + (f" and {gpw:g} GPU(s)" if gpw > 0 else "") + " free for one worker")
    if options.workers is not None:
        workers = int(options.workers)
        if workers < 1:
            raise RayEngineError("--workers must be at least 1")
        if workers > fits:
            raise RayEngineError(
                f"--workers {workers} does not fit: the Ray cluster ({len(nodes)} node(s), {cpus:g} CPUs, "
                f"{gpus:g} GPUs) holds {fits} worker(s) of {cpw:g} CPU(s)" + (f" and {gpw:g} GPU(s)" if gpw > 0 else "")
            )
    elif not options.address and len(nodes) == 1:
        # A local instance: a replica per CPU, but one when the driver scores too (it is a
        # scorer of its own, and every replica costs seconds of CPU to start). The dataset
        # is made on the driver, so no read task waits for a CPU the replicas hold (the
        # issue's 2-core deadlock was Ray Data's read_images), and 1-thread scorers beat
        # one on every core: 1000 images at 224 px in 35.5 s with two replicas, 49.4 s
        # with one 2-thread replica, 38.0 s with the local engine (bench_ray.py, quiet 2-core Xeon).
        workers = max(1, fits - 1) if driver else fits
    else:
        # A cluster: leave one CPU's worth for Ray Data's tasks and, on the head, the driver.
        spare = max(1, int((cpus - cpw) // cpw))
        workers = max(1, min(fits, spare))
    threads = int(cpw)
    if options.threads:
        threads = int(options.threads)
    elif not options.address and len(nodes) == 1:
        # A local instance: the actors (and the driver, when it scores) share the cores.
        threads = max(1, int(cpus // (workers + (1 if driver else 0))))
    return ClusterPlan(workers, cpw, gpw, max(1, threads), cpus, gpus, len(nodes))
