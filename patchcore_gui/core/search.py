"""Exact nearest-neighbour search over the memory bank (squared L2, as faiss returns).

Backends, chosen by device:

* CPU: faiss ``IndexFlatL2`` (what the reference uses, so scores match it exactly);
* CUDA with a faiss build that has GPU support: faiss ``GpuIndexFlatL2``;
* CUDA otherwise: an exact chunked torch matmul search on the GPU.

All return (distances, indices) with distances squared and ascending per row.
"""

from __future__ import annotations

import numpy as np
import torch


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
                backend = "faiss-cpu"
        self.backend = backend
        self._index = None
        self._bank: torch.Tensor | None = None
        self._bank_sq: torch.Tensor | None = None
        if backend in ("faiss-cpu", "faiss-gpu"):
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
        elif backend == "torch":
            self._bank = bank_t.to(self.device)
            self._bank_sq = (self._bank * self._bank).sum(dim=1)
        else:
            raise ValueError(f"unknown search backend {backend!r}")

    def search(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each (Q, k): squared L2, ascending."""
        k = min(int(k), self.size)
        if self._index is not None:
            if isinstance(queries, torch.Tensor):
                queries = queries.detach().to("cpu", torch.float32).numpy()
            q = np.ascontiguousarray(queries, dtype=np.float32)
            dist, idx = self._index.search(q, k)
            return dist, idx
        assert self._bank is not None
        q_t = torch.as_tensor(queries).to(self.device, torch.float32)
        d, i = torch_knn(q_t, self._bank, k, self._bank_sq)
        return d.cpu().numpy(), i.cpu().numpy()

    def patch_scores(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> np.ndarray:
        """Mean squared distance to the k nearest bank rows, float32 (Q,)."""
        dist, _ = self.search(queries, k)
        return np.mean(dist, axis=-1).astype(np.float32)
