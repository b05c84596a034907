"""Batch sizes on the GPU: chosen from free memory, halved for good on out-of-memory.

The CPU gains nothing from big batches (per-image search, two cores), so it keeps a
small fixed batch. On CUDA the batch is the largest power of two whose measured working
memory fits in half the free memory; if an out-of-memory error still happens mid-run
(another process took memory), the batch is halved and stays halved for the rest of
the run, so one error does not repeat on every following batch.

``Prefetcher`` decodes the next batch in a thread while the current one is computed
(prediction on the CPU, where no worker processes run).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .model import PatchCoreModel

#: Batch size on the CPU, and the largest one chosen on a GPU.
CPU_BATCH = 8
MAX_GPU_BATCH = 512
_PROBE = 4


def gpu_batch_for(free_bytes: int, per_image_bytes: float, cap: int = MAX_GPU_BATCH) -> int:
    """Largest power of two <= ``cap`` whose images fit in half of ``free_bytes``."""
    if per_image_bytes <= 0:
        return cap
    fit = int(0.5 * free_bytes / per_image_bytes)
    if fit < 1:
        return 1
    return int(min(cap, 1 << (fit.bit_length() - 1)))


def default_batch_size(model: PatchCoreModel) -> int:
    """The batch size to use when none is given: fixed on the CPU, measured on CUDA."""
    if model.device.type != "cuda":
        return CPU_BATCH
    dev = model.device
    crop = model.config.crop
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    # One probe batch measures activations, features and search blocks per image; the
    # fixed part (search buffers) makes this an over-estimate, which is the safe side.
    model.score_tensor(torch.zeros(_PROBE, 3, crop, crop))
    torch.cuda.synchronize(dev)
    per_image = (torch.cuda.max_memory_allocated(dev) - base) / _PROBE
    free, _ = torch.cuda.mem_get_info(dev)
    return gpu_batch_for(free, per_image)


def default_num_workers(device: torch.device) -> int:
    """Decoding processes: none on the CPU (the model needs the cores), up to 8 on CUDA."""
    if device.type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class AdaptiveScorer:
    """``model.score_tensor`` that survives CUDA out-of-memory errors.

    On an error the failing chunk is split in half and ``limit`` (the most images scored
    at once) drops to that half for every later call, so the run continues at the size
    that fits instead of failing again batch after batch.
    """

    def __init__(self, model: PatchCoreModel) -> None:
        self.model = model
        self.limit: int | None = None

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        scores, grids = [], []
        start, n = 0, int(images.shape[0])
        while start < n:
            step = min(n - start, self.limit or n)
            s, g = self._score(images[start : start + step])
            scores.append(s)
            grids.append(g)
            start += step
        return np.concatenate(scores), np.concatenate(grids)

    def _score(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self.model.score_tensor(images)
        except torch.OutOfMemoryError:
            if images.shape[0] <= 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = int(images.shape[0]) // 2
            self.limit = half if self.limit is None else min(self.limit, half)
            return self(images)


class Prefetcher:
    """Iterate ``iterable`` one item ahead in a daemon thread (``depth`` items queued).

    Exceptions raised while fetching are re-raised by ``__next__`` in the consumer's
    thread; ``close`` stops the thread at its next item (the consumer stopped early).
    """

    _DONE = object()

    def __init__(self, iterable: Any, depth: int = 1) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(iterable),), name="patchcore-prefetch", daemon=True)
        self._thread.start()

    def _run(self, it: Iterator[Any]) -> None:
        try:
            for item in it:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((False, exc))
            return
        self._put((True, self._DONE))

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Any:
        ok, item = self._queue.get()
        if not ok:
            raise item
        if item is self._DONE:
            self._queue.put((True, self._DONE))  # later calls stop too
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the thread (it may finish the item in hand first) and drop queued items."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5.0)
