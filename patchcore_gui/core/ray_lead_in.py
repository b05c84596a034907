"""The driver's lead-in on a local Ray instance: it scores from the end while the replicas start.

A local instance's replicas are ready 5 to 8 s after the command starts on a small
machine (Ray's processes start, each replica imports torch and loads the model), while
the driver has the model loaded after about 3 s. The driver therefore scores too, from
the last engine batch backwards, while the replicas work from the first one forwards;
where they meet, the driver stops. On 500 images on 2 cores the Ray engine then costs
about 7 % more than the local engine (median of nine runs), against a fifth to a quarter
more with two replicas and an idle driver (``benchmarks/bench_ray.py``, README). On a
cluster (``--ray-address``) the driver does not score: it may be a laptop, and the
replicas may not see its files.

Who scores which batch is settled in a *claims file* on the machine: one byte per
engine batch, read and written under an exclusive ``flock`` by the driver and the
replicas alike (they are processes of the same machine):

- the driver takes a batch only while it is free, and stops at the first one a replica
  has taken (every earlier batch then belongs to the replicas);
- a replica takes every batch of its block the driver has not taken, including batches
  a replica already took: Ray retries a dead replica's block, and its batches must be
  scored again (the driver drops an image it already received);
- a replica skips batches the driver took.

So every batch is scored by the driver or by the replicas, and written once.
The driver scores each batch with ``uri_scoring.score_batches``, as a replica does,
on the replicas' torch thread count: the same batches, the same arithmetic, the same scores.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .results import BatchResult

if TYPE_CHECKING:
    from .model import PatchCoreModel

__all__ = ["DRIVER", "FREE", "REPLICA", "Claims", "LeadIn"]

FREE, DRIVER, REPLICA = 0, 1, 2


class Claims:
    """The claims file: who scores each engine batch (``FREE``, ``DRIVER`` or ``REPLICA``).

    ``Claims.create(path, n)`` makes it (all free); ``Claims(path)`` opens it (a replica).
    Each operation locks the whole file for microseconds; nothing else is shared.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    @classmethod
    def create(cls, path: str | os.PathLike[str], batches: int) -> Claims:
        """A claims file of ``batches`` free batches at ``path`` (replaced if it exists)."""
        with open(path, "wb") as fh:
            fh.write(bytes(batches))
        return cls(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing drops the lock

    def take_for_driver(self, batch: int) -> bool:
        """Take ``batch`` for the driver if it is free; False when a replica has it (stop there)."""
        with self._locked() as fd:
            if os.pread(fd, 1, batch) != bytes([FREE]):
                return False
            os.pwrite(fd, bytes([DRIVER]), batch)
            return True

    def take_for_replica(self, batches: Sequence[int]) -> list[bool]:
        """Take ``batches`` for a replica; per batch False where the driver has it (skip it)."""
        if not batches:
            return []
        # Only the block's span is read (a block's batches are consecutive): the file
        # holds a byte per batch of the whole run, 125 kB at a million images.
        first, last = min(batches), max(batches)
        with self._locked() as fd:
            state = os.pread(fd, last - first + 1, first)
            keep = [state[b - first] != DRIVER for b in batches]
            for b, k in zip(batches, keep, strict=True):
                if k and state[b - first] == FREE:
                    os.pwrite(fd, bytes([REPLICA]), b)
            return keep

    def states(self) -> bytes:
        """Every batch's state, in order (tests and the benchmark)."""
        with self._locked() as fd:
            return os.pread(fd, os.fstat(fd).st_size, 0)


class LeadIn:
    """The driver scoring engine batches from the last one back, in a thread, until it meets
    the replicas (see the module docstring).

    ``rows`` are the run's engine batches (``ray_engine.engine_batches``); results go to
    the queue ``results`` as ``("lead", BatchResult)`` and, when it stops, ``("lead-end",
    error or None)``; the Ray engine puts its replicas' results in the same queue. ``threads``: torch's thread count while it scores (the replicas'), restored
    after. ``pause_s``: seconds to wait before each batch (tests only: to leave some
    batches to the replicas).
    """

    def __init__(self, model: PatchCoreModel, paths: list[str], labels: np.ndarray, rows: list[dict],
                 batch_size: int, claims: Claims, *, threads: int, grid_dtype: type = np.float16,
                 pause_s: float = 0.0) -> None:
        self.model = model
        self.paths = paths
        self.labels = labels
        self.rows = rows
        self.batch_size = batch_size
        self.claims = claims
        self.threads = threads
        self.grid_dtype = grid_dtype
        self.pause_s = pause_s
        self.results: queue.Queue[tuple[str, object]] = queue.Queue()
        self.scored = 0  # images the driver scored
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def matches(self, rows: list[dict], batch_size: int, grid_dtype: type) -> bool:
        """True when this lead-in works through exactly these batches (same images, same cut)."""
        return (batch_size == self.batch_size and np.dtype(grid_dtype) == np.dtype(self.grid_dtype)
                and len(rows) == len(self.rows)
                and all(a["indices"] == b["indices"] for a, b in zip(rows, self.rows, strict=True)))

    def start(self) -> LeadIn:
        """Start scoring in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="ray-lead-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop before the next batch (the batch in hand is finished and reported)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (after :meth:`stop`, at most one batch's time)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import torch

        from .uri_scoring import score_batches

        before = torch.get_num_threads()
        error: BaseException | None = None
        try:
            torch.set_num_threads(max(1, int(self.threads)))
            for b in range(len(self.rows) - 1, -1, -1):
                if self.pause_s > 0:
                    time.sleep(self.pause_s)
                if self._stop.is_set() or not self.claims.take_for_driver(b):
                    break
                row = self.rows[b]
                idx = np.asarray(row["indices"], dtype=np.int64)
                got, scores, grids, errors = score_batches(self.model, idx, list(row["paths"]), self.batch_size,
                                                           self.grid_dtype)
                self.scored += len(got)
                self.results.put(("lead", BatchResult(indices=got, paths=[self.paths[i] for i in got],
                                                      scores=scores, grids=grids, errors=errors,
                                                      labels=self.labels[got])))
        except BaseException as exc:  # handed to the consumer: the run must not lose it
            error = exc
        finally:
            torch.set_num_threads(before)
            self.results.put(("lead-end", error))
