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

Faults: Ray Data restarts a dead actor (``max_restarts=-1``) and retries the block it
held; a block's rows reach the driver only once its task succeeded, and the driver
drops any index it has already received, so every image is written exactly once.

Memory on the driver: one dataset row per batch (paths only) and, per image, a done
flag; results are handed on as they arrive, never all held.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .datasets import ImageSet
from .ray_actors import ModelReplica
from .ray_cluster import ClusterPlan, RayEngineError, RayOptions, plan_cluster, ray_running
from .results import BatchResult, work_list
from .uri_listing import is_uri

if TYPE_CHECKING:
    from .model import PatchCoreModel

__all__ = ["RayEngineError", "RayOptions", "RayScorer", "ray_scorer"]

#: Most engine batches in one Ray Data block (one actor task): 16 x 8 images.
BLOCK_BATCHES = 16


def _worker_path(path: str) -> str:
    """The name a worker opens: URIs as they are, local paths absolute (workers' cwd differs)."""
    return path if is_uri(path) else os.path.abspath(path)


def engine_batches(todo: np.ndarray, paths: Sequence[str], batch_size: int) -> list[dict[str, Any]]:
    """The dataset rows: ``todo`` in order, cut every ``batch_size`` as ``iter_predict`` cuts it."""
    rows = []
    for start in range(0, len(todo), batch_size):
        part = todo[start : start + batch_size]
        rows.append({"indices": part.tolist(), "paths": [_worker_path(paths[i]) for i in part]})
    return rows


class RayScorer:
    """A drop-in for ``engine.iter_predict`` that scores on a Ray cluster.

    Made by :func:`ray_scorer` (which connects and sizes the cluster); call it as
    ``iter_predict`` is called. ``model`` must have been loaded from a file (its bytes
    go to the workers); ``num_workers`` (DataLoader processes) is ignored: each actor
    decodes its own batches.
    """

    def __init__(self, ray: Any, plan: ClusterPlan, device: str) -> None:
        self.ray = ray
        self.plan = plan
        self.device = device
        self._model_refs: dict[str, Any] = {}

    def _model_ref(self, model: PatchCoreModel) -> Any:
        """The model file's bytes in the object store (put once per file; kept while we run)."""
        if model.path is None or not Path(model.path).is_file():
            raise RayEngineError("the Ray engine needs a model loaded from a file (its bytes go to the workers)")
        key = os.fspath(Path(model.path).resolve())
        if key not in self._model_refs:
            self._model_refs[key] = self.ray.put(Path(key).read_bytes())
        return self._model_refs[key]

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
        engine batches. ``cancel`` stops before the next block.
        """
        import ray.data

        paths, lab, todo = work_list(images, labels, skip)  # URIs intact
        if not len(todo):
            return
        rows = engine_batches(todo, paths, max(1, int(batch_size or 8)))  # one dataset row per engine batch
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the command draws its own bar
        ctx.print_on_execution_start = False
        plan = self.plan
        # Results reach the driver a block at a time (one actor task per block): at least
        # four blocks per actor so the work spreads, at most BLOCK_BATCHES batches each so
        # results stream in and a lost worker costs little.
        per_block = max(1, min(BLOCK_BATCHES, -(-len(rows) // (4 * plan.workers))))
        bs = max(1, int(batch_size or 8))
        ds = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // per_block)).map_batches(
            ModelReplica,
            # A block per call: its engine batches scored one after the other, the next
            # decoded while one computes (each batch unchanged: the local engine's).
            batch_size=None,
            fn_constructor_kwargs={"model_ref": [self._model_ref(model)], "device": self.device,
                                   "precision": model.precision, "threads": plan.threads,
                                   "grid_dtype": np.dtype(grid_dtype).name, "batch_size": bs},
            compute=ray.data.ActorPoolStrategy(size=plan.workers),
            num_cpus=plan.cpus_per_worker,
            num_gpus=plan.gpus_per_worker or None,
            batch_format="numpy",
        )
        seen = np.zeros(len(paths), dtype=bool)
        # No prefetch: with one block prefetched, each block reached the driver only when the
        # next one was done (measured: the first results 4 s late, one block's time), so the
        # run file and the progress lagged a block behind.
        it = ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)
        try:
            for block in it:
                if cancel is not None and cancel.is_set():
                    return
                idx = np.asarray(block["index"], dtype=np.int64)
                fresh = ~seen[idx]  # a retried batch must not be written twice
                if not fresh.any():
                    continue
                seen[idx] = True
                idx = idx[fresh]
                yield BatchResult(
                    indices=idx,
                    paths=[paths[i] for i in idx],
                    scores=np.asarray(block["score"], dtype=np.float32)[fresh],
                    grids=np.asarray(block["grid"])[fresh].astype(grid_dtype, copy=False),
                    errors=[str(e) for e in np.asarray(block["error"])[fresh]],
                    labels=lab[idx],
                )
        finally:
            with contextlib.suppress(Exception):
                it.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def ray_scorer(options: RayOptions, device: str = "auto") -> Iterator[RayScorer]:
    """Connect to (or start) Ray, check and size the cluster, and yield a :class:`RayScorer`.

    Raises RayEngineError (one line) when Ray is missing, the address does not answer
    or the cluster cannot hold the workers asked for; a local instance started here
    stops when the block ends.
    """
    with ray_running(options) as ray:
        plan = plan_cluster(ray, options)
        yield RayScorer(ray, plan, device)
