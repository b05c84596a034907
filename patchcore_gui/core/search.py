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
    except Exception:  # noqa: BLE001 - a broken faiss install simply means "no"
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


class ReducedBoundSearch:
    """Fast nearest-neighbour search with exact final distances (the ``--precision bf16`` path).

    The bank is centred and projected onto its top ``rank`` principal axes. For a query q
    and bank row b with projections q', b' and residual norms e_q, e_b (the part outside
    the projection), ||q - b||^2 >= ||q' - b'||^2 + (e_q - e_b)^2 (Pythagoras plus the
    reverse triangle inequality on the residuals). That lower bound costs a rank-dim
    product instead of a full one. For each query the ``candidates`` rows with the
    smallest bound are re-scored exactly in float32; every other row whose bound is
    still below the best exact distance is re-scored too, so the nearest row is only
    missed when float rounding of the bound itself hides it (``last_misses`` counts
    rows that needed the second pass, for measurement).
    """

    def __init__(self, bank: torch.Tensor | np.ndarray, device: str | torch.device = "cpu",
                 rank: int = 128, candidates: int = 4) -> None:
        self.device = torch.device(device)
        b = torch.as_tensor(bank, dtype=torch.float32).to(self.device)
        self.size, self.dim = int(b.shape[0]), int(b.shape[1])
        self.rank = min(rank, self.dim)
        self.candidates = min(candidates, self.size)
        self.backend = f"reduced-{self.rank}"
        self.bank = b.contiguous()
        self.mean = b.mean(dim=0)
        centred = b - self.mean
        cov = (centred.T.double() @ centred.double()) / max(1, self.size - 1)
        _, vecs = torch.linalg.eigh(cov)
        self.axes = vecs[:, -self.rank:].flip(1).to(torch.float32).contiguous()  # (D, r)
        proj = centred @ self.axes
        self.bank_proj_t = proj.T.contiguous()  # (r, N)
        self.bank_proj_sq = (proj * proj).sum(dim=1)
        self.bank_res = ((centred * centred).sum(dim=1) - self.bank_proj_sq).clamp_min(0.0).sqrt()
        self.bank_sq = (b * b).sum(dim=1)
        self.last_misses = 0
        self.last_second_pass = 0

    @torch.no_grad()
    def search(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), (Q, k): squared L2 recomputed exactly in float32."""
        q = torch.as_tensor(queries).to(self.device, torch.float32)
        k = min(int(k), self.size)
        c = max(self.candidates, k)
        centred = q - self.mean
        qp = centred @ self.axes
        qp_sq = (qp * qp).sum(dim=1, keepdim=True)
        q_res = ((centred * centred).sum(dim=1, keepdim=True) - qp_sq).clamp_min(0.0).sqrt()
        lb = torch.addmm(qp_sq + self.bank_proj_sq[None, :], qp, self.bank_proj_t, alpha=-2.0)
        lb.clamp_min_(0.0)
        lb += (q_res - self.bank_res[None, :]).square_()
        _, cand = torch.topk(lb, c, dim=1, largest=False, sorted=False)
        exact = self._exact(q, cand)
        kth = torch.topk(exact, k, dim=1, largest=False, sorted=True)
        best_d, best_i = kth.values, torch.gather(cand, 1, kth.indices)
        # Rows whose bound is below the current k-th exact distance may be nearer still.
        limit = best_d[:, -1:] * (1.0 + 1e-5) + 1e-6
        lb.scatter_(1, cand, float("inf"))
        rows, cols = torch.nonzero(lb < limit, as_tuple=True)
        self.last_second_pass = int(rows.numel())
        self.last_misses = 0
        if rows.numel():
            d_extra = (self.bank_sq[cols] + (q[rows] * q[rows]).sum(dim=1)
                       - 2.0 * (q[rows] * self.bank[cols]).sum(dim=1)).clamp_min(0.0)
            if k == 1:
                # Vectorised: the smallest extra distance per query, and whether it wins.
                inf = torch.full((q.shape[0],), float("inf"), device=q.device)
                best_extra = inf.scatter_reduce(0, rows, d_extra, reduce="amin")
                wins = best_extra < best_d[:, 0]
                if wins.any():
                    hit = wins[rows] & (d_extra == best_extra[rows])
                    win_rows, win_cols = rows[hit], cols[hit]
                    best_d[win_rows, 0] = d_extra[hit]
                    best_i[win_rows, 0] = win_cols
                    self.last_misses = int(wins.sum())
            else:
                for r in torch.unique(rows).tolist():
                    sel = rows == r
                    ds = torch.cat([best_d[r], d_extra[sel]])
                    ids = torch.cat([best_i[r], cols[sel]])
                    order = torch.topk(ds, k, largest=False, sorted=True).indices
                    if not torch.equal(ids[order], best_i[r]):
                        self.last_misses += 1
                    best_d[r], best_i[r] = ds[order], ids[order]
        return best_d.cpu().numpy(), best_i.cpu().numpy()

    def _exact(self, q: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Exact squared distances of each query to its candidate rows, faiss's formula."""
        rows = self.bank[cand.reshape(-1)].reshape(*cand.shape, self.dim)  # (Q, c, D)
        dots = torch.bmm(rows, q[:, :, None])[:, :, 0]
        q_sq = (q * q).sum(dim=1, keepdim=True)
        return (q_sq + self.bank_sq[cand] - 2.0 * dots).clamp_min_(0.0)

    def patch_scores(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> np.ndarray:
        """Mean squared distance to the k nearest bank rows, float32 (Q,)."""
        dist, _ = self.search(queries, k)
        return np.mean(dist, axis=-1).astype(np.float32)
