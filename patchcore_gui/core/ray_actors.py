"""What runs on a Ray worker: one model replica per actor, scoring whole engine batches.

``ModelReplica`` is the callable class Ray Data's ``map_batches`` turns into a pool of
actors. Each actor loads the model once, from the model file's bytes that the driver
put in Ray's object store (workers need not see the driver's file system), on its GPU
when Ray gave it one. Each call receives one engine batch (the image indices and paths
the local engine would put in the same batch), opens the images itself (local paths,
or any URI pyarrow's file systems read: ``uri_scoring.score_batch``) and scores them with
the local engine's own ``iter_predict``: the same decoding, the same error rows with the
same text, the same arithmetic.

Nothing here imports Ray at module level: the class is plain Python, and Ray pickles
it by reference (workers import this module from the installed package).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TEST_PID_DIR_ENV", "ModelReplica"]

#: Environment variable (tests only): a folder where each replica writes a file named
#: after its process id when it starts, so a test can kill a worker process mid-run;
#: while a file ``delay`` there holds a number, each batch takes that many seconds more.
TEST_PID_DIR_ENV = "PATCHCORE_GUI_TEST_RAY_PID_DIR"


def _test_delay() -> float:
    """Seconds to sleep per batch (the test hook above); 0 outside tests."""
    folder = os.environ.get(TEST_PID_DIR_ENV)
    if not folder:
        return 0.0
    try:
        return float(Path(folder, "delay").read_text() or 0)
    except (OSError, ValueError):
        return 0.0


class ModelReplica:
    """A model replica in a Ray actor: ``__call__`` scores rows of one engine batch each.

    Args:
        model_ref: a one-element list holding the ObjectRef of the model file's bytes
            (wrapped so Ray hands the reference, not the bytes, to the constructor), or
            the bytes themselves.
        device: "auto", "cpu", "cuda" or "cuda:N", resolved inside the actor (Ray sets
            ``CUDA_VISIBLE_DEVICES`` to the GPUs it gave the actor; none: the CPU).
        precision: the run's resolved precision (exact, fast or half).
        threads: torch's intra-op threads in this actor (Ray's default is one per CPU
            reserved; a local instance gives a lone actor every core, as the local engine has).
        grid_dtype: dtype of the grids sent back (float16 as the run file stores them,
            float32 when the caller writes maps).
        batch_size: the run's engine batch size. Rows that are consecutive full batches
            are scored in one ``iter_predict`` (the next batch decoded while one computes,
            as the local engine does); None: each row alone.
        claims: on a local instance, the claims file shared with the driver
            (``core/ray_lead_in.py``): rows (``batch`` numbers) the driver took are
            skipped; None: every row is scored.
    """

    def __init__(self, model_ref: list[Any], device: str, precision: str, threads: int,
                 grid_dtype: str = "float16", batch_size: int | None = None, claims: str | None = None) -> None:
        # libgomp's threads spin while they wait (its default): a block's decoding thread,
        # which runs torch ops too, and torch's pool then fight for the cores, and on a
        # small or shared node each batch took 6x as long (2 threads, 2-core Xeon, load 3:
        # 2.4 s instead of 0.37 s per batch of 8 at 224 px). Waiting passively costs nothing
        # measurable when the node is free. Read when torch loads OpenMP: set before the
        # import (a worker process imports torch here first); a value set by the user wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import ray
        import torch

        from .model import PatchCoreModel

        if threads > 0:
            torch.set_num_threads(int(threads))
        # The bytes themselves are accepted too (a replica built outside Ray, in tests).
        ref = model_ref[0]
        data: bytes = ref if isinstance(ref, bytes) else ray.get(ref)
        fd, tmp = tempfile.mkstemp(suffix=".patchcore")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.model = PatchCoreModel.load(tmp, device=device, precision=precision)
        finally:
            os.unlink(tmp)
        del data
        self.grid_dtype = np.dtype(grid_dtype)
        self.batch_size = batch_size
        self.claims = claims
        pid_dir = os.environ.get(TEST_PID_DIR_ENV)
        if pid_dir:
            open(os.path.join(pid_dir, str(os.getpid())), "w").close()  # noqa: SIM115 - an empty marker

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Score the engine batches in ``batch`` (rows of ``indices`` and ``paths`` lists).

        Returns one row per image: ``index`` (int64), ``score`` (float32, NaN on an
        error row), ``grid`` (``grid_dtype``, NaN on an error row) and ``error`` (str).
        """
        from .uri_scoring import score_batches

        delay = _test_delay()
        if delay > 0:
            time.sleep(delay)
        rows = [(np.asarray(i, dtype=np.int64), [str(p) for p in n])
                for i, n in zip(batch["indices"], batch["paths"], strict=True)]
        if self.claims is not None:
            from .ray_lead_in import Claims

            # The driver scores from the end: what it took is a tail of the run, so the
            # rows kept are the block's first ones, cut as before.
            try:
                keep = Claims(self.claims).take_for_replica([int(b) for b in batch["batch"]])
            except FileNotFoundError:  # the run is over (its driver removes the file): nothing left
                return self._empty()
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
            if not rows:
                return self._empty()
        bs = self.batch_size
        if bs and all(len(n) == bs for _, n in rows[:-1]) and len(rows[-1][1]) <= bs:
            # Full batches, the last maybe short: cut every bs, they are the same batches.
            groups = [(np.concatenate([i for i, _ in rows]), [p for _, n in rows for p in n], bs)]
        else:
            groups = [(i, n, len(n)) for i, n in rows]
        out_idx, out_scores, out_grids, out_err = [], [], [], []
        for idx, names, size in groups:
            got_idx, scores, grids, errors = score_batches(self.model, idx, names, size, self.grid_dtype.type)
            out_idx.append(got_idx)
            out_scores.append(scores)
            out_grids.append(grids)
            out_err.extend(errors)
        return {
            "index": np.concatenate(out_idx),
            "score": np.concatenate(out_scores).astype(np.float32),
            "grid": np.concatenate(out_grids),
            "error": np.array(out_err, dtype=object),
        }

    def _empty(self) -> dict[str, np.ndarray]:
        """No rows (the driver scored the whole block), in the columns' dtypes and grid shape."""
        from .engine import patch_grid_shape

        return {"index": np.zeros(0, np.int64), "score": np.zeros(0, np.float32),
                "grid": np.zeros((0, *patch_grid_shape(self.model)), self.grid_dtype),
                "error": np.array([], dtype=object)}
