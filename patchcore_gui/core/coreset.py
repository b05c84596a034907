"""Approximate greedy coreset subsampling (docs/patchcore-spec.md section 3), made fast without changing it.

The reference algorithm: project rows to 128-d with a random linear map (uniform in
+-1/sqrt(D), like a default ``nn.Linear(D, 128, bias=False)``), pick 10 random start
rows, set every row's distance to its mean Euclidean distance to them, then
``int(N * p)`` times take the row with the largest distance, keep it, and lower every
row's distance to its distance to the new row if that is smaller.

The reference recomputes all norms and the distance to every row at every pick. Here
norms are cached, distances are kept squared (same order, no square roots), and on the
CPU rows that provably cannot move are skipped: if a row's nearest kept centre ``a``
satisfies ||c_a - s|| >= 2 ||x - c_a||, the triangle inequality gives ||x - s|| >=
||x - c_a||, so the new centre ``s`` cannot lower its distance (Elkan's bound). Skipped
rows would have kept their value anyway, so the picks are those of the straightforward
algorithm (``greedy_coreset_reference``), which the tests check.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np
import torch

#: Dimension of the random projection used to rank rows (the reference's 128).
PROJECTION_DIM = 128
#: Number of random start rows (the reference's 10).
NUM_START_POINTS = 10


class CancelledError(Exception):
    """Raised when a cancel event is set during long work."""


def projection_matrix(dim: int, seed: int, out_dim: int = PROJECTION_DIM) -> torch.Tensor:
    """(dim, out_dim) projection, uniform in +-1/sqrt(dim), fixed by ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(dim)
    return (torch.rand(dim, out_dim, generator=gen, dtype=torch.float32) * 2.0 - 1.0) * bound


def _project(features: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor:
    """Rows projected to 128-d on ``device`` (the full rows if already at most 128-d)."""
    n, dim = features.shape
    if dim <= PROJECTION_DIM:
        return features.to(device, torch.float32).contiguous()
    proj = projection_matrix(dim, seed).to(device)
    out = torch.empty(n, PROJECTION_DIM, dtype=torch.float32, device=device)
    step = 65536  # bounded peak memory when features live on the CPU
    for i in range(0, n, step):
        out[i : i + step] = features[i : i + step].to(device, torch.float32) @ proj
    return out


def _start_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(n, size=min(NUM_START_POINTS, n), replace=False)


def _initial_distances(x: torch.Tensor, norms: torch.Tensor, starts: np.ndarray) -> torch.Tensor:
    """Squared mean Euclidean distance of every row to the start rows."""
    s = x[torch.as_tensor(starts, device=x.device)]
    d2 = (norms[:, None] + norms[starts][None, :] - 2.0 * (x @ s.T)).clamp_min_(0.0)
    return d2.sqrt_().mean(dim=1).square_()


def _sq_dist(rows: torch.Tensor, row_norms: torch.Tensor, s: torch.Tensor, s_norm: torch.Tensor) -> torch.Tensor:
    """Squared distances of ``rows`` to ``s``, identical for a row whichever rows come with it.

    BLAS matrix-vector kernels sum a row differently depending on where it falls in
    the block (remainder rows take another path), so a row's value would depend on
    which other rows were computed with it, and near-ties could then resolve
    differently in the pruned and the straightforward loops. An elementwise product
    and a row sum reduce each row the same way every time.
    """
    out = torch.empty(rows.shape[0], dtype=rows.dtype, device=rows.device)
    step = 16384  # bounds the temporary (step x 128 floats)
    for i in range(0, rows.shape[0], step):
        dots = (rows[i : i + step] * s).sum(dim=1)
        out[i : i + step] = (row_norms[i : i + step] + s_norm) - 2.0 * dots
    return out.clamp_min_(0.0)


def coreset_size(n: int, fraction: float) -> int:
    """Rows kept for ``fraction`` of ``n`` rows, as the reference counts them."""
    return n if fraction >= 1.0 else int(n * fraction)


def greedy_coreset(
    features: torch.Tensor,
    fraction: float,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Indices of the rows kept, in selection order (all rows in order for fraction >= 1).

    Args:
        features: (N, D) float32 rows (CPU or ``device``).
        fraction: share of rows to keep, 0 < fraction <= 1.
        seed: fixes the projection and the start rows.
        device: where the distance updates run.
        progress: called as ``progress(done, total)`` now and then.
        cancel: checked now and then; raises CancelledError when set.
    """
    n = int(features.shape[0])
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"coreset fraction must be in (0, 1], got {fraction}")
    if fraction >= 1.0:
        return np.arange(n)
    m = coreset_size(n, fraction)
    if m == 0:
        raise ValueError(f"coreset of {fraction:.4g} x {n} rows keeps no row")
    dev = torch.device(device)
    x = _project(features, seed, dev)
    norms = (x * x).sum(dim=1)
    d = _initial_distances(x, norms, _start_points(n, seed))
    if dev.type == "cuda":
        return _greedy_dense(x, norms, d, m, progress, cancel)
    return _greedy_pruned(x, norms, d, m, progress, cancel)


def _tick(i: int, m: int, progress: Callable[[int, int], None] | None, cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("coreset selection cancelled")
    if progress is not None:
        progress(i, m)


def _greedy_dense(
    x: torch.Tensor,
    norms: torch.Tensor,
    d: torch.Tensor,
    m: int,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> np.ndarray:
    """One matrix-vector product per pick over all rows (GPU: cheaper than pruning)."""
    picks = torch.empty(m, dtype=torch.int64, device=x.device)
    for i in range(m):
        j = torch.argmax(d)
        picks[i] = j
        s = x[j]
        new = torch.addmv(norms + norms[j], x, s, alpha=-2.0).clamp_min_(0.0)
        torch.minimum(d, new, out=d)
        if i % 512 == 0:
            _tick(i, m, progress, cancel)
    _tick(m, m, progress, None)
    return picks.cpu().numpy()


def _greedy_pruned(
    x: torch.Tensor,
    norms: torch.Tensor,
    d: torch.Tensor,
    m: int,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> np.ndarray:
    """Same picks as the dense loop, skipping rows Elkan's bound proves unaffected."""
    n = x.shape[0]
    owner = torch.full((n,), -1, dtype=torch.int64)  # index into ``centres`` of nearest pick
    centres = torch.empty(m, x.shape[1], dtype=torch.float32)
    cnorms = torch.empty(m, dtype=torch.float32)
    picks = np.empty(m, dtype=np.int64)
    unowned = torch.ones(n, dtype=torch.bool)
    # Slack on the squared bound so float rounding can never skip a row that would move.
    slack = 1.0 + 1e-4
    dense_streak = 0
    for i in range(m):
        j = int(torch.argmax(d))
        picks[i] = j
        s = x[j]
        sn = norms[j]
        cand = None  # None: compare every row (first pick, or pruning not worth it)
        if i > 0 and dense_streak <= 0:
            # Squared distance from the new centre to every earlier centre.
            dc2 = (cnorms[:i] + sn - 2.0 * (centres[:i] @ s)).clamp_min_(0.0)
            keep = unowned | (dc2[owner.clamp_min(0)] <= 4.0 * slack * d + 1e-12)
            cand = torch.nonzero(keep).squeeze(1)
            if cand.numel() > (3 * n) // 5:
                # Gathering most rows costs more than one dense pass: go dense for a
                # while, then try pruning again (distances shrink as picks accumulate).
                cand, dense_streak = None, 16
        dense_streak -= 1
        centres[i] = s
        cnorms[i] = sn
        if cand is None:
            new = _sq_dist(x, norms, s, sn)
            lower = new < d
            d = torch.where(lower, new, d)
            owner.masked_fill_(lower, i)
            unowned &= ~lower
        elif cand.numel():
            new = _sq_dist(x.index_select(0, cand), norms.index_select(0, cand), s, sn)
            cur = d.index_select(0, cand)
            lower = new < cur
            moved = cand[lower]
            d.index_copy_(0, moved, new[lower])
            owner.index_fill_(0, moved, i)
            unowned.index_fill_(0, moved, False)
        if i % 512 == 0:
            _tick(i, m, progress, cancel)
    _tick(m, m, progress, None)
    return picks


def greedy_coreset_reference(features: torch.Tensor, fraction: float, seed: int = 0) -> np.ndarray:
    """The straightforward algorithm (full distance update per pick), for tests and benchmarks."""
    n = int(features.shape[0])
    if fraction >= 1.0:
        return np.arange(n)
    m = coreset_size(n, fraction)
    x = _project(features, seed, torch.device("cpu"))
    norms = (x * x).sum(dim=1)
    d = _initial_distances(x, norms, _start_points(n, seed))
    picks = np.empty(m, dtype=np.int64)
    for i in range(m):
        j = int(torch.argmax(d))
        picks[i] = j
        d = torch.minimum(d, _sq_dist(x, norms, x[j], norms[j]))
    return picks
