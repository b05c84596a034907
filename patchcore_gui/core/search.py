"""Exact nearest-neighbour search over the memory bank (squared L2, as faiss returns).

Backends, chosen by device:

* CPU: ``blocked``, a blocked float32 torch product (below), for features under
  ``PRUNE_MIN_DIM`` dims; ``pruned`` from there on: for k = 1 a principal-subspace lower
  bound skips rows that cannot be nearest (``reduced_search.ReducedBoundSearch`` in
  exact mode), the blocked search does the rest; faiss ``IndexFlatL2`` stays available
  as ``faiss-cpu`` (tests and benchmarks compare them);
* CUDA with a faiss build that has GPU support: faiss ``GpuIndexFlatL2``;
* CUDA otherwise: an exact chunked torch matmul search on the GPU.

All return (distances, indices) with distances squared and ascending per row.

Why not faiss on the CPU: faiss 1.15 runs ``IndexFlatL2.search`` without BLAS whenever
queries x dimension < 128,000 (``distance_compute_blas_threshold``), which is every
PatchCore image with a native EfficientNet-Lite0 embedding (784 x 152): one SIMD
difference loop per (query, row) pair, 8 x the CPU time of the same arithmetic as a
matrix product on the AVX-512 Xeon this was measured on (docs/performance.md). Its
OpenMP pool is also a second one beside torch's, and on two cores the two spin against
each other between calls. The blocked search runs in torch's pool only.

How ``blocked`` stays exact: per block of bank rows, one product gives
``||b||^2 - 2 q.b`` (faiss's formula without the query's constant, which does not change
the order), reduced to the nearest row(s) while the block is in cache; the k rows found
are then re-scored as ``sum((q - b)^2)`` in float32, the value faiss's non-BLAS loop
returns and the true distance to float32 rounding (the product formula loses digits to
cancellation when a distance is small against the norms). A returned distance is
therefore a function of the query and its row only, never of the other queries in the
call, and only a near-tie (rows whose distances differ by float rounding) can choose
another row than faiss does.
"""

from __future__ import annotations

import numpy as np
import torch

from .knn import (  # re-exported: callers use search.*
    blocked_knn,
    torch_knn,
)

#: Feature dimension from which the CPU default prunes with the lower bound. Measured
#: (1 thread, CPU ms per 784-query image, docs/performance.md): 16,385 x 1024 WR50 rows
#: blocked 227, pruned 159 (rank 96); 7,840 x 152 EfficientNet-Lite0 rows blocked 22,
#: pruned 49 (the product is already small, the bound pass's overhead is not).
PRUNE_MIN_DIM = 512


def faiss_has_gpu() -> bool:
    """True when the installed faiss can use a CUDA device."""
    try:
        import faiss

        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:  # a broken faiss install simply means "no"
        return False


class NearestNeighbourSearch:
    """Exact k-NN over a fixed bank; picks the backend from the device."""

    def __init__(self, bank: torch.Tensor | np.ndarray, device: str | torch.device = "cpu",
                 backend: str = "auto") -> None:
        self.device = torch.device(device)
        bank_t = torch.as_tensor(bank, dtype=torch.float32)
        self.dim = int(bank_t.shape[1])
        self.size = int(bank_t.shape[0])
        if backend == "auto":
            if self.device.type == "cuda":
                backend = "faiss-gpu" if faiss_has_gpu() else "torch"
            else:
                backend = "pruned" if self.dim >= PRUNE_MIN_DIM else "blocked"
        self.backend = backend
        self._index = None
        self._bank: torch.Tensor | None = None
        self._bank_sq: torch.Tensor | None = None
        self._pruned = None
        if backend == "pruned":
            from .reduced_search import ReducedBoundSearch

            if self.device.type != "cpu":
                raise ValueError("the pruned search runs on the CPU; use torch on CUDA")
            self._pruned = ReducedBoundSearch(bank_t, "cpu", exact=True)
        elif backend in ("faiss-cpu", "faiss-gpu"):
            import faiss

            arr = np.ascontiguousarray(bank_t.numpy(), dtype=np.float32)
            if backend == "faiss-gpu":
                self._res = faiss.StandardGpuResources()
                cfg = faiss.GpuIndexFlatConfig()
                cfg.device = self.device.index or 0
                self._index = faiss.GpuIndexFlatL2(self._res, self.dim, cfg)
            else:
                self._index = faiss.IndexFlatL2(self.dim)
            self._index.add(arr)
        elif backend in ("torch", "blocked"):
            if backend == "blocked" and self.device.type != "cpu":
                raise ValueError("the blocked search runs on the CPU; use torch on CUDA")
            self._bank = bank_t.to(self.device).contiguous()
            self._bank_sq = (self._bank * self._bank).sum(dim=1)
        else:
            raise ValueError(f"unknown search backend {backend!r}")

    @torch.no_grad()
    def search(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each (Q, k): squared L2, ascending."""
        k = min(int(k), self.size)
        if self._pruned is not None:
            return self._pruned.search(queries, k)
        if self._index is not None:
            if isinstance(queries, torch.Tensor):
                queries = queries.detach().to("cpu", torch.float32).numpy()
            q = np.ascontiguousarray(queries, dtype=np.float32)
            dist, idx = self._index.search(q, k)
            return dist, idx
        assert self._bank is not None
        q_t = torch.as_tensor(queries).to(self.device, torch.float32)
        if self.backend == "blocked":
            d, i = blocked_knn(q_t, self._bank, k, self._bank_sq)
            return d.numpy(), i.numpy()
        d, i = torch_knn(q_t, self._bank, k, self._bank_sq)
        return d.cpu().numpy(), i.cpu().numpy()

    def patch_scores(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> np.ndarray:
        """Mean squared distance to the k nearest bank rows, float32 (Q,)."""
        dist, _ = self.search(queries, k)
        return np.mean(dist, axis=-1).astype(np.float32)
