"""``predict --engine ray``: the local engine's batches, scored by model replicas on Ray.

Ray Data runs the work: the images still to score are cut into the local engine's
batches (the same images in the same order, so the same scores), each batch becomes
one row of a dataset made on the driver, and ``map_batches`` hands the rows, a block
(up to ``BLOCK_BATCHES`` rows) per call, to a pool of
:class:`~patchcore_gui.core.ray_actors.ModelReplica` actors, each holding the model
once and scoring a block's batches one after the other, the next decoded while one
computes. Results come back per image (index, score, grid, error) in whatever order the
actors finish; :class:`RayScorer` turns them into ``BatchResult`` objects, so the run
file, the resume logic and the CSV are the local engine's own
(``run_driver.predict_into_run(..., scorer=...)``).

On a local instance the driver scores too, from the last batch back, from the moment
the model is loaded (``core/ray_lead_in.py``): its results and the replicas' reach the
run through one queue, whichever comes first; when every image is in, the dataset's run
is stopped, with replicas maybe still starting.

Faults: Ray Data restarts a dead actor (``max_restarts=-1``) and retries the block it
held; a block's rows reach the driver only once its task succeeded, and the driver
drops any index it has already received, so every image is written exactly once.

Memory on the driver: one dataset row per batch (paths only) and, per image, a done
flag; results are handed on as they arrive, never all held.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .datasets import ImageSet
from .ray_actors import ModelReplica
from .ray_cluster import (
    ClusterPlan,
    RayEngineError,
    RayOptions,
    plan_cluster,
    ray_running,
    starts_local_instance,
)
from .ray_lead_in import Claims, LeadIn
from .results import BatchResult, work_list
from .uri_listing import is_uri

if TYPE_CHECKING:
    from .model import PatchCoreModel

__all__ = ["RayEngineError", "RayOptions", "RayScorer", "discard_lead_in", "driver_scores", "lead_in", "ray_scorer"]

#: Most engine batches in one Ray Data block (one actor task): 16 x 8 images.
BLOCK_BATCHES = 16
#: Seconds to wait for the replicas' results thread to end once the run is stopped.
STOP_WAIT_S = 30.0
#: Most engine batches in one block while the driver scores too (local instances).
LEAD_IN_BLOCK_BATCHES = 2


def _worker_path(path: str) -> str:
    """The name a worker opens: URIs as they are, local paths absolute (workers' cwd differs)."""
    return path if is_uri(path) else os.path.abspath(path)


def engine_batches(todo: np.ndarray, paths: Sequence[str], batch_size: int) -> list[dict[str, Any]]:
    """The dataset rows: ``todo`` in order, cut every ``batch_size`` as ``iter_predict`` cuts it."""
    rows = []
    for start in range(0, len(todo), batch_size):
        part = todo[start : start + batch_size]
        rows.append({"batch": len(rows), "indices": part.tolist(), "paths": [_worker_path(paths[i]) for i in part]})
    return rows


def lead_in(model: PatchCoreModel, images: Sequence[str | os.PathLike[str]] | ImageSet, *,
            labels: Sequence[int] | np.ndarray | None = None, skip: Sequence[int] | None = None,
            batch_size: int, grid_dtype: type, threads: int, pause_s: float = 0.0) -> LeadIn | None:
    """The driver's lead-in over these images (``core/ray_lead_in.py``), not started; None when
    nothing is left to score. Its claims file is removed by :meth:`RayScorer.__call__`
    (or :func:`discard_lead_in` when no run adopts it)."""
    paths, lab, todo = work_list(images, labels, skip)
    if not len(todo):
        return None
    rows = engine_batches(todo, paths, batch_size)
    fd, name = tempfile.mkstemp(prefix="patchcore-claims-")
    os.close(fd)
    return LeadIn(model, paths, lab, rows, batch_size, Claims.create(name, len(rows)), threads=threads,
                  grid_dtype=grid_dtype, pause_s=pause_s)


def discard_lead_in(lead: LeadIn | None) -> None:
    """Stop a lead-in and remove its claims file (its results, if any, are dropped)."""
    if lead is None:
        return
    lead.stop()
    lead.join(timeout=60)
    with contextlib.suppress(OSError):
        os.unlink(lead.claims.path)


class RayScorer:
    """A drop-in for ``engine.iter_predict`` that scores on a Ray cluster.

    Made by :func:`ray_scorer` (which connects and sizes the cluster); call it as
    ``iter_predict`` is called. ``model`` must have been loaded from a file (its bytes
    go to the workers); ``num_workers`` (DataLoader processes) is ignored: each actor
    decodes its own batches.

    ``driver_threads``: on a local instance, the driver scores too (from the last batch
    back, on this many torch threads, the replicas' count) while the replicas start
    (``core/ray_lead_in.py``); None: the replicas score everything (a cluster). ``early``:
    a lead-in already started for the run (``predict`` starts one as soon as the model is
    loaded, while Ray is still starting); used when it covers the same batches.
    ``driver_scored``: images the driver scored in the last call.
    """

    def __init__(self, ray: Any, plan: ClusterPlan, device: str, *, driver_threads: int | None = None,
                 early: LeadIn | None = None, lead_in_pause_s: float = 0.0) -> None:
        self.ray = ray
        self.plan = plan
        self.device = device
        self.driver_threads = driver_threads
        self.early = early
        self.lead_in_pause_s = lead_in_pause_s
        self.driver_scored = 0
        self._model_refs: dict[str, Any] = {}

    def _model_ref(self, model: PatchCoreModel) -> Any:
        """The model file's bytes in the object store (put once per file; kept while we run)."""
        if model.path is None or not Path(model.path).is_file():
            raise RayEngineError("the Ray engine needs a model loaded from a file (its bytes go to the workers)")
        key = os.fspath(Path(model.path).resolve())
        if key not in self._model_refs:
            self._model_refs[key] = self.ray.put(Path(key).read_bytes())
        return self._model_refs[key]

    def _lead_in_for(self, model: PatchCoreModel, images: Any, labels: Any, skip: Any, rows: list[dict],
                     bs: int, grid_dtype: type) -> LeadIn | None:
        """The early lead-in when it covers exactly ``rows``, else a new one (or None: no driver scoring)."""
        early, self.early = self.early, None
        if early is not None and early.model is model and early.matches(rows, bs, grid_dtype):
            return early
        discard_lead_in(early)
        if self.driver_threads is None:
            return None
        lead = lead_in(model, images, labels=labels, skip=skip, batch_size=bs, grid_dtype=grid_dtype,
                       threads=self.driver_threads, pause_s=self.lead_in_pause_s)
        return lead.start() if lead is not None else None

    def __call__(
        self,
        model: PatchCoreModel,
        images: Sequence[str | os.PathLike[str]] | ImageSet,
        *,
        labels: Sequence[int] | np.ndarray | None = None,
        batch_size: int | None = 8,
        num_workers: int | None = 0,
        cancel: threading.Event | None = None,
        grid_dtype: type = np.float16,
        skip: Sequence[int] | None = None,
    ) -> Iterator[BatchResult]:
        """Score ``images`` on the cluster; one ``BatchResult`` per block of results as it arrives.

        Same arguments and results as ``engine.iter_predict``, except that results come
        in completion order (each carries its indices) and a result may hold several
        engine batches. ``cancel`` stops before the next result.
        """
        from .batching import default_batch_size

        self.driver_scored = 0
        paths, lab, todo = work_list(images, labels, skip)  # URIs intact
        if not len(todo):
            discard_lead_in(self.early)
            self.early = None
            return
        bs = max(1, int(batch_size or default_batch_size(model)))
        rows = engine_batches(todo, paths, bs)  # one dataset row per engine batch
        lead = self._lead_in_for(model, images, labels, skip, rows, bs, grid_dtype)
        events: queue.Queue[tuple[str, Any]] = lead.results if lead is not None else queue.Queue()
        # The dataset's run starts in the stream's thread.
        stream = _ReplicaStream(self._replica_dataset(model, rows, bs, grid_dtype, lead), events)
        seen = np.zeros(len(paths), dtype=bool)
        remaining = len(todo)
        open_sources = {"ray", "lead"} if lead is not None else {"ray"}
        try:
            while remaining > 0 and open_sources:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    kind, item = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind in ("ray-end", "lead-end"):
                    open_sources.discard(kind[:-4])
                    if item is not None:
                        raise item
                    continue
                result = item if kind == "lead" else _block_result(item, paths, lab, grid_dtype)
                fresh = ~seen[result.indices]  # a retried block must not be written twice
                if not fresh.any():
                    continue
                if not fresh.all():
                    result = result.subset(fresh)
                seen[result.indices] = True
                remaining -= len(result)
                if kind == "lead":
                    self.driver_scored += len(result)
                yield result
        finally:
            stream.stop()  # before Ray stops: an iteration left running would start a new Ray
            if lead is not None:
                discard_lead_in(lead)

    def _replica_dataset(self, model: PatchCoreModel, rows: list[dict], bs: int, grid_dtype: type,
                         lead: LeadIn | None) -> Any:
        """The Ray Data dataset of the replicas' result blocks (runs when iterated)."""
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the command draws its own bar
        ctx.print_on_execution_start = False
        plan = self.plan
        # Results reach the driver a block at a time (one actor task per block): at least
        # four blocks per actor so the work spreads, at most BLOCK_BATCHES batches each so
        # results stream in and a lost worker costs little.
        # When the driver scores from the end, a replica takes a block's batches when it
        # starts it: small blocks, so that where the two meet neither waits long for the other.
        most = LEAD_IN_BLOCK_BATCHES if lead is not None else BLOCK_BATCHES
        per_block = max(1, min(most, -(-len(rows) // (4 * plan.workers))))
        ds = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // per_block)).map_batches(
            ModelReplica,
            # A block per call: its engine batches scored one after the other, the next
            # decoded while one computes (each batch unchanged: the local engine's).
            batch_size=None,
            fn_constructor_kwargs={"model_ref": [self._model_ref(model)], "device": self.device,
                                   "precision": model.precision, "threads": plan.threads,
                                   "grid_dtype": np.dtype(grid_dtype).name, "batch_size": bs,
                                   "claims": lead.claims.path if lead is not None else None},
            compute=ray.data.ActorPoolStrategy(size=plan.workers),
            num_cpus=plan.cpus_per_worker,
            num_gpus=plan.gpus_per_worker or None,
            batch_format="numpy",
        )
        return ds


class _ReplicaStream:
    """The replicas' result blocks, moved into ``events`` as ``("ray", block)`` by a thread (the
    driver's lead-in reports into the same queue: neither waits for the other), then
    ``("ray-end", error or None)``.

    :meth:`stop` ends the run of the dataset at once: the driver may have scored the last
    batches while replicas still start, and a Ray Data iteration left running when Ray
    stops would start a new Ray instance from its thread.
    """

    def __init__(self, ds: Any, events: queue.Queue) -> None:
        self._events = events
        self._stopped = threading.Event()
        self._executor: Any = None
        it = ds.iterator()
        # Ray Data shuts its executor down only from the consuming thread (the end of the
        # iteration) or on garbage collection; the executor is caught here so that stop()
        # can end the run from the driver's thread (Ray 2.60's DataIterator internals; on
        # another version stop() waits for the replicas to drain the remaining blocks).
        start = getattr(it, "_to_ref_bundle_iterator", None)
        if callable(start):
            def caught() -> Any:
                out = start()
                self._executor = out[2]
                if self._stopped.is_set():  # stopped while the run was starting
                    self._shutdown()
                return out

            it._to_ref_bundle_iterator = caught
        # No prefetch: with one block prefetched, each block reached the driver only when the
        # next one was done (measured: the first results 4 s late, one block's time), so the
        # run file and the progress lagged a block behind.
        self._batches = it.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)
        self._thread = threading.Thread(target=self._pump, name="ray-results", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        error: BaseException | None = None
        try:
            for block in self._batches:
                if self._stopped.is_set():
                    break
                self._events.put(("ray", block))
        except BaseException as exc:  # the consumer raises it, unless it already stopped
            error = exc
        finally:
            self._events.put(("ray-end", None if self._stopped.is_set() else error))

    def _shutdown(self) -> None:
        if self._executor is not None:
            with contextlib.suppress(Exception):
                self._executor.shutdown(force=True)

    def stop(self) -> None:
        """End the dataset's run (tasks in flight are dropped) and wait for the thread."""
        self._stopped.set()
        self._shutdown()
        self._thread.join(timeout=STOP_WAIT_S)


def _block_result(block: dict[str, np.ndarray], paths: list[str], lab: np.ndarray, grid_dtype: type) -> BatchResult:
    """A replica's result block as a ``BatchResult``."""
    idx = np.asarray(block["index"], dtype=np.int64)
    return BatchResult(
        indices=idx,
        paths=[paths[i] for i in idx],
        scores=np.asarray(block["score"], dtype=np.float32),
        grids=np.asarray(block["grid"]).astype(grid_dtype, copy=False),
        errors=[str(e) for e in np.asarray(block["error"])],
        labels=lab[idx],
    )


def driver_scores(options: RayOptions, device: str) -> bool:
    """True when the driver scores beside the replicas (``core/ray_lead_in.py``): a local
    instance started here, replicas on the CPU (the driver's model is on its CPU)."""
    return options.driver_scores and device == "cpu" and starts_local_instance(options)


@contextlib.contextmanager
def ray_scorer(options: RayOptions, device: str = "auto") -> Iterator[RayScorer]:
    """Connect to (or start) Ray, check and size the cluster, and yield a :class:`RayScorer`.

    Raises RayEngineError (one line) when Ray is missing, the address does not answer
    or the cluster cannot hold the workers asked for; a local instance started here
    stops when the block ends. On a local instance the driver scores too (see
    :func:`driver_scores`); a lead-in set as the scorer's ``early`` and not used by a
    run is stopped at the end.
    """
    lead = driver_scores(options, device)
    with ray_running(options) as ray:
        plan = plan_cluster(ray, options, driver=lead)
        scorer = RayScorer(ray, plan, device, driver_threads=plan.threads if lead else None)
        try:
            yield scorer
        finally:
            discard_lead_in(scorer.early)
