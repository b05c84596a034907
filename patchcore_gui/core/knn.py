"""Exact k-nearest-neighbour kernels on torch tensors (squared L2, as faiss returns).

The arithmetic under ``search.NearestNeighbourSearch`` and ``reduced_search``: both
import it from here, so neither imports the other for a kernel.
"""

from __future__ import annotations

import torch

#: Bank rows per block of the CPU search: a (784 x 1024) float32 block is 3.2 MB, which
#: stays in cache while it is reduced; larger blocks measured slower (docs/performance.md,
#: "Exact at fast-path speed").
CPU_BANK_BLOCK = 1024


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
