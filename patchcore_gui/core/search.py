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

#: Feature dimension from which the CPU default prunes with the lower bound. Measured
#: (1 thread, CPU ms per 784-query image, docs/performance.md): 16,385 x 1024 WR50 rows
#: blocked 227, pruned 159 (rank 96); 7,840 x 152 EfficientNet-Lite0 rows blocked 22,
#: pruned 49 (the product is already small, the bound pass's overhead is not).
PRUNE_MIN_DIM = 512
#: Bank rows per block of the CPU search: a (784 x 1024) float32 block is 3.2 MB, which
#: stays in cache while it is reduced; larger blocks measured slower (docs/performance.md,
#: "Exact at fast-path speed").
CPU_BANK_BLOCK = 1024


def faiss_has_gpu() -> bool:
    """True when the installed faiss can use a CUDA device."""
    try:
        import faiss

        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:  # a broken faiss install simply means "no"
        return False


def torch_knn(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int,
    bank_sq: torch.Tensor | None = None,
    chunk: int = 16384,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-NN by ||q||^2 + ||b||^2 - 2 q.b in chunks of bank rows (faiss's formula).

    Returns squared distances clamped at 0 (float32) and int64 indices, ascending.
    """
    q = queries.to(torch.float32)
    b = bank.to(torch.float32)
    if bank_sq is None:
        bank_sq = (b * b).sum(dim=1)
    q_sq = (q * q).sum(dim=1, keepdim=True)
    best_d: torch.Tensor | None = None
    best_i: torch.Tensor | None = None
    for start in range(0, b.shape[0], chunk):
        part = b[start : start + chunk]
        d = torch.addmm(q_sq + bank_sq[start : start + chunk][None, :], q, part.T, alpha=-2.0)
        d.clamp_min_(0.0)
        kk = min(k, d.shape[1])
        vals, idx = torch.topk(d, kk, dim=1, largest=False, sorted=True)
        idx = idx + start
        if best_d is None:
            best_d, best_i = vals, idx
        else:
            cat_d = torch.cat([best_d, vals], dim=1)
            cat_i = torch.cat([best_i, idx], dim=1)
            best_d, order = torch.topk(cat_d, min(k, cat_d.shape[1]), dim=1, largest=False, sorted=True)
            best_i = torch.gather(cat_i, 1, order)
    assert best_d is not None and best_i is not None
    return best_d, best_i


def direct_distances(queries: torch.Tensor, bank: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``sum((q - b)^2)`` in float32 for each query and its rows ``idx`` (Q, k).

    Elementwise, then one sum per (query, row): the same value whichever other queries
    share the call.
    """
    rows = bank.index_select(0, idx.reshape(-1)).view(*idx.shape, bank.shape[1])
    diff = rows - queries[:, None, :]
    return (diff * diff).sum(dim=2)


def blocked_knn(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int,
    bank_sq: torch.Tensor | None = None,
    block: int = CPU_BANK_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-NN on the CPU: blocked product to find the rows, direct distances to score them.

    Returns (Q, k) squared distances (float32, ascending) and int64 indices; on equal
    distances the lower row index comes first for k = 1, as in faiss.
    """
    q = queries.to(torch.float32).contiguous()
    b = bank
    n, n_q = int(b.shape[0]), int(q.shape[0])
    k = min(int(k), n)
    if bank_sq is None:
        bank_sq = (b * b).sum(dim=1)
    if n_q == 0:
        return torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
    step = max(1, int(block))
    buf = torch.empty(n_q, min(step, n))
    best_v = torch.full((n_q,), float("inf"))
    best_i = torch.zeros(n_q, dtype=torch.long)
    top_v: torch.Tensor | None = None
    top_i: torch.Tensor | None = None
    for start in range(0, n, step):
        end = min(n, start + step)
        # ||b||^2 - 2 q.b: beta copies the row norms in, MKL adds -2 q.b on top.
        part = buf[:, : end - start]
        torch.addmm(bank_sq[start:end][None, :], q, b[start:end].T, alpha=-2.0, out=part)
        if k == 1:
            v, i = part.min(dim=1)  # first minimum within the block
            better = v < best_v  # strict: an earlier block keeps a tie, as faiss does
            best_v = torch.where(better, v, best_v)
            best_i = torch.where(better, i + start, best_i)
            continue
        kk = min(k, end - start)
        v, i = torch.topk(part, kk, dim=1, largest=False, sorted=True)
        i = i + start
        if top_v is None or top_i is None:
            top_v, top_i = v, i
        else:
            cat_v, cat_i = torch.cat([top_v, v], dim=1), torch.cat([top_i, i], dim=1)
            top_v, order = torch.topk(cat_v, min(k, cat_v.shape[1]), dim=1, largest=False, sorted=True)
            top_i = torch.gather(cat_i, 1, order)
    idx = best_i[:, None] if k == 1 else top_i
    assert idx is not None
    dist = direct_distances(q, b, idx)
    if k > 1:
        # Re-scored values may reorder near-equal neighbours; ties keep the lower index.
        order = torch.argsort(dist + 0.0, dim=1, stable=True)
        dist, idx = torch.gather(dist, 1, order), torch.gather(idx, 1, order)
    return dist, idx


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
