"""Fast nearest-neighbour search with exact final distances (the ``--precision fast`` and ``half`` paths).

How candidates are chosen: the bank is centred and projected onto its top ``rank``
principal axes. For a query q and bank row b with projections q', b' and residual norms
e_q, e_b (the part outside the projection),

    ||q - b||^2  >=  ||q' - b'||^2 + (e_q - e_b)^2

(Pythagoras, then the reverse triangle inequality on the residuals). The right side is
the squared distance between the (rank + 1)-d vectors [q', e_q] and [b', e_b], so the
whole bound matrix is ONE product of (rank + 2) columns: [q', e_q, 1] against
[-2 b', -2 e_b, ||b'||^2 + e_b^2] gives the bound minus the query's constant
||q'||^2 + e_q^2. That costs about rank/1024 of the full product.

For each query the ``candidates`` rows with the smallest bound are re-scored exactly in
float32 (faiss's formula); then every other row whose bound is still below the best
exact distance is re-scored too. A row is therefore only missed when float rounding of
the bound itself hides it; distances returned are always exact float32 distances.
Where the bound is loose (features without low-rank structure) and a query has more
than ``max_rescore`` rows left below it, that query is searched exactly instead, so the
worst case costs about an exact search, never more.

Queries are processed in blocks so that the bound block stays in the CPU cache while it
is reduced (a 784 x 16k float32 matrix is 51 MB; a block of ~200 rows is 13 MB).

On the CPU with k = 1 (PatchCore's score) the bound block is computed bank-major,
(bank rows x queries): MKL runs that tall, narrow product about 1.7 x faster than the
query-major one. Its first candidates are the rows at each query's minimum bound
(``amin`` is vectorised; ``topk`` and ``argmin`` along the bank are not), and the rows
left below the bound are found in a packed bitmap (8 mask bytes per int64 word, so the
``nonzero`` scan reads an eighth of the elements).
"""

from __future__ import annotations

import numpy as np
import torch

from .bf16_search import Bf16CandidateSearch, nonzero_pairs
from .knn import blocked_knn, torch_knn
from .precision import cpu_has_native_bf16

#: Bound-matrix elements per query block: about 13 MB of float32 on the CPU (cache
#: sized); on a GPU memory bandwidth is plentiful, so blocks are much larger.
_CPU_BLOCK_ELEMENTS = 3_200_000
_GPU_BLOCK_ELEMENTS = 1 << 28
#: Bank rows per chunk where whole-bank temporaries (centred rows, projections) would be
#: large: 16k x 1024 float32 is 64 MB.
_ROW_CHUNK = 16384


#: Ranks tried when the rank is chosen from the data (the smallest that is tight enough
#: wins); at most 3/4 of the feature dimension, beyond which the bound product costs
#: about what the exact search does.
RANK_STEPS = (64, 96, 128, 192, 256, 384, 512)
#: A rank is tight enough when, on the calibration queries, the bound pass would
#: re-score at most this many rows per query on average ...
MAX_RESCORE_MEAN = 12.0
#: ... and at most this share of the queries would need an exact search instead.
MAX_FALLBACK_SHARE = 0.05
#: Exact mode: a row is re-scored when its computed bound is below the best distance
#: found plus EXACT_MARGIN x (||q - mean||^2 + max ||b - mean||^2). The bound is a float32
#: product of r + 2 terms after a float32 projection; its rounding is typically
#: sqrt(r) x 6e-8 of those norms (1.4e-6 at rank 512), so the margin covers it many times
#: over (the linear worst case, r x 6e-8, is not reached by sums of this kind). And a
#: row hidden by a larger error could only be nearer than the returned one by less than
#: that error: exact to float32 rounding either way.
EXACT_MARGIN = 2e-5
#: On the CPU the bound pass (its compares, minima and bitmap) costs about as much as
#: this many more product columns: a tight rank is used only where r + 2 + this is below
#: half the dimension, else the blocked exact search runs. Measured on an Intel Xeon
#: (AVX-512), 1 thread, CPU ms per 784-query image: 152-d EfficientNet-Lite0 rows,
#: rank 64: bound 46, blocked 21; 1024-d WR50 rows, rank 96: bound 159 (exact mode),
#: blocked 227.
BOUND_PASS_COLUMNS = 40
#: Queries of the first search that calibrate the rank.
_CALIBRATION_QUERIES = 64


class ReducedBoundSearch:
    """Principal-subspace lower-bound candidate search, exact float32 re-scoring.

    ``rank=None`` (what models use) chooses the rank on the first search of 32 or more
    queries, from how many rows each rank's bound would leave to re-score for those
    queries (``_calibrate``); where no rank of ``RANK_STEPS`` is tight enough, every
    search is exact (``backend`` "reduced-exact"). The rank changes only the speed:
    returned distances always come from the same exact formula.
    """

    def __init__(self, bank: torch.Tensor | np.ndarray, device: str | torch.device = "cpu",
                 rank: int | None = None, candidates: int = 4, exact: bool = False) -> None:
        self.device = torch.device(device)
        #: Exact mode (the exact path's search, ``search.NearestNeighbourSearch``): distances
        #: re-scored as sum((q - b)^2), a margin for the bound's rounding, k > 1 searched
        #: blocked (see EXACT_MARGIN).
        self.exact = bool(exact)
        b = torch.as_tensor(bank, dtype=torch.float32).to(self.device)
        self.size, self.dim = int(b.shape[0]), int(b.shape[1])
        self.candidates = min(candidates, self.size)
        self.bank = b.contiguous()
        self.bank_sq = (b * b).sum(dim=1)
        self.mean = b.mean(dim=0)
        centred = b - self.mean
        cov = (centred.T.double() @ centred.double()) / max(1, self.size - 1)
        del centred
        _, vecs = torch.linalg.eigh(cov)
        self._vecs = vecs.flip(1)  # (D, D) float64, largest variance first
        self.auto_rank = rank is None
        self.exact_only = False
        # Fast mode on a CPU with native bfloat16 (AMX / AVX512_BF16): where the bound does
        # not pay, candidates come from a bfloat16 product instead of the float32 one
        # (``bf16_search``; same exact re-scoring). Built on first use.
        self.use_bf16 = not self.exact and self.device.type == "cpu" and cpu_has_native_bf16()
        self._bf16: Bf16CandidateSearch | None = None
        per_block = _GPU_BLOCK_ELEMENTS if self.device.type == "cuda" else _CPU_BLOCK_ELEMENTS
        self.block = max(16, per_block // max(1, self.size))
        #: A query with more rows than this left below its bound is searched exactly instead.
        self.max_rescore = max(64, self.size // 64)
        self._set_rank(min(128 if rank is None else rank, self.dim))
        #: Measurement counters of the last search: pairs re-scored by the bound pass,
        #: queries whose nearest rows were not all among the first candidates, and queries
        #: searched exactly because their bound was too loose.
        self.last_second_pass = 0
        self.last_misses = 0
        self.last_exact_fallbacks = 0

    def _set_rank(self, rank: int) -> None:
        """Project on the first ``rank`` principal axes and build the bound products."""
        self.rank = rank
        self.backend = f"{'pruned' if self.exact else 'reduced'}-{rank}"
        self.axes = self._vecs[:, :rank].to(torch.float32).contiguous()  # (D, r)
        # (N, r + 1), in chunks of rows: no full centred copy of a large bank.
        aug = torch.cat([self._augment(self.bank[i : i + _ROW_CHUNK] - self.mean)
                         for i in range(0, self.size, _ROW_CHUNK)])
        # Bound minus the query constant = [q', e_q, 1] . [-2 b', -2 e_b, ||[b', e_b]||^2].
        bound_rows = torch.cat([-2.0 * aug, (aug * aug).sum(dim=1, keepdim=True)], dim=1)
        self.bound_t = bound_rows.T.contiguous()  # (r + 2, N): query-major blocks
        # (N, r + 2): bank-major blocks (CPU, k = 1)
        self.bound_rows = bound_rows.contiguous() if self.device.type == "cpu" else None
        #: Largest ||[b', e_b]||^2 = ||b - mean||^2 of the bank: scales the exact mode's margin.
        self._max_aug_sq = float(bound_rows[:, -1].max())

    def _calibrate(self, q: torch.Tensor) -> None:
        """Choose the rank from real queries: the smallest step whose bound is tight enough.

        For a sample of the queries, the exact nearest distance d is computed, then for
        each step r the number of bank rows whose rank-r bound is below d: the rows the
        bound pass would re-score. Measured on the WR50 bench bank: rank 64 re-scored 20
        rows per query and was slower than rank 128 (8 rows); on EfficientNet-Lite0's
        1024-d layout rank 128 re-scored 18 rows (1.8 x slower than exact), rank 192 8
        rows (0.7 x exact).
        """
        self.auto_rank = False
        steps = [r for r in RANK_STEPS if r <= 0.75 * self.dim]
        if not steps:
            return  # tiny features: keep the provisional rank
        pick = torch.linspace(0, q.shape[0] - 1, min(_CALIBRATION_QUERIES, q.shape[0])).round().long()
        qs = q[pick.to(q.device)]
        d, _ = torch_knn(qs, self.bank, 1, self.bank_sq)
        top = steps[-1]
        axes = self._vecs[:, :top].to(torch.float32)
        qc = qs - self.mean
        qp = qc @ axes  # (sample, top)
        q_tot = (qc * qc).sum(dim=1)
        q_in = {r: (qp[:, :r] ** 2).sum(dim=1) for r in steps}
        e_qs = {r: (q_tot - q_in[r]).clamp_min(0.0).sqrt() for r in steps}
        below = {r: torch.zeros(qs.shape[0], device=q.device) for r in steps}
        # Bank rows in chunks: the counts add up, and a 256k-row bank never needs a
        # full centred copy or a (rows x 512) projection at once.
        for start in range(0, self.size, _ROW_CHUNK):
            bc = self.bank[start : start + _ROW_CHUNK] - self.mean
            bp = bc @ axes
            b_tot = (bc * bc).sum(dim=1)
            for r in steps:
                b_in = (bp[:, :r] ** 2).sum(dim=1)
                e_b = (b_tot - b_in).clamp_min(0.0).sqrt()
                e_q = e_qs[r]
                proj = (q_in[r][:, None] + b_in[None, :] - 2.0 * qp[:, :r] @ bp[:, :r].T).clamp_min(0.0)
                bound = proj + (e_q[:, None] - e_b[None, :]) ** 2
                below[r] += (bound < d).sum(dim=1).float()
        for r in steps:
            heavy = below[r] > self.max_rescore
            light_mean = float(below[r][~heavy].mean()) if bool((~heavy).any()) else float("inf")
            if float(heavy.float().mean()) <= MAX_FALLBACK_SHARE and light_mean <= MAX_RESCORE_MEAN:
                if self.device.type == "cpu" and r + 2 + BOUND_PASS_COLUMNS >= self.dim / 2:
                    break  # the bound pass would cost about what the blocked product does
                if r != self.rank:
                    self._set_rank(r)
                return
        # No projection well below the full dimension bounds these queries usefully.
        self.exact_only = True
        self.backend = "pruned-blocked" if self.exact else "reduced-exact"

    def _augment(self, centred: torch.Tensor) -> torch.Tensor:
        """[projection, residual norm] of centred rows: (n, rank + 1)."""
        proj = centred @ self.axes
        res = ((centred * centred).sum(dim=1) - (proj * proj).sum(dim=1)).clamp_min(0.0).sqrt()
        return torch.cat([proj, res[:, None]], dim=1)

    @torch.no_grad()
    def search(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), (Q, k): squared L2 recomputed exactly in float32, ascending."""
        q = torch.as_tensor(queries).to(self.device, torch.float32)
        n_q = int(q.shape[0])
        k = min(int(k), self.size)
        if self.auto_rank and k == 1 and n_q >= 32:
            self._calibrate(q)
        if self.exact_only or (self.exact and (k != 1 or self.bound_rows is None)):
            return self._exact_search(q, k)
        c = min(max(self.candidates, k), self.size)
        aug = self._augment(q - self.mean)
        q_const = (aug * aug).sum(dim=1)
        q_aug = torch.cat([aug, torch.ones(n_q, 1, device=q.device)], dim=1)
        q_sq = (q * q).sum(dim=1)
        if k == 1 and self.bound_rows is not None:
            return self._search_nearest_cpu(q, q_sq, q_aug, q_const)
        out_d = torch.empty(n_q, k, device=q.device)
        out_i = torch.empty(n_q, k, dtype=torch.long, device=q.device)
        bound = torch.empty(min(self.block, max(1, n_q)), self.size, device=q.device)
        self.last_second_pass = 0
        self.last_misses = 0
        self.last_exact_fallbacks = 0
        for s in range(0, n_q, self.block):
            e = min(n_q, s + self.block)
            lb = bound[: e - s]
            torch.mm(q_aug[s:e], self.bound_t, out=lb)
            if c == 1:
                cand = lb.argmin(dim=1, keepdim=True)
            else:
                cand = torch.topk(lb, c, dim=1, largest=False, sorted=False).indices
            exact = self._exact(q[s:e], q_sq[s:e], cand)
            best = torch.topk(exact, k, dim=1, largest=False, sorted=True)
            best_d, best_i = best.values, torch.gather(cand, 1, best.indices)
            # Rows whose bound is below the current k-th exact distance may be nearer still.
            limit = best_d[:, -1] * (1.0 + 1e-5) + 1e-6 - q_const[s:e]
            lb.scatter_(1, cand, float("inf"))
            below = lb < limit[:, None]
            # Features without low-rank structure give loose bounds and so many rows to
            # re-score that an exact search of those queries is cheaper: cap the work.
            # (A bool sum converts to int64 first: 25x slower than summing the bytes.)
            heavy = below.view(torch.uint8).sum(dim=1, dtype=torch.int32) > self.max_rescore
            if bool(heavy.any()):
                below[heavy] = False
                hq = torch.nonzero(heavy)[:, 0]
                hd, hi = torch_knn(q[s:e][hq], self.bank, k, self.bank_sq)
                best_d[hq], best_i[hq] = hd, hi
                self.last_exact_fallbacks += int(hq.numel())
            rows, cols = torch.nonzero(below, as_tuple=True)
            self.last_second_pass += int(rows.numel())
            if rows.numel():
                glob = rows + s
                d_extra = self._pair_distances(q, q_sq, cols, glob)
                self._merge(best_d, best_i, rows, cols, d_extra, k)
            out_d[s:e], out_i[s:e] = best_d, best_i
        return out_d.cpu().numpy(), out_i.cpu().numpy()

    def _search_nearest_cpu(self, q: torch.Tensor, q_sq: torch.Tensor, q_aug: torch.Tensor,
                            q_const: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """k = 1 on the CPU: bank-major bound blocks, min-bound candidates, bitmap bound pass."""
        n_q, n = int(q.shape[0]), self.size
        blk = min(self.block, max(1, n_q))
        out_d = torch.empty(n_q)
        out_i = torch.empty(n_q, dtype=torch.long)
        bound = torch.empty(n * blk)
        # Mask bytes padded to whole int64 words; the pad stays zero (see _mask_pairs).
        mask_buf = torch.zeros((n * blk + 7) // 8 * 8, dtype=torch.bool)
        self.last_second_pass = 0
        self.last_misses = 0
        self.last_exact_fallbacks = 0
        for s in range(0, n_q, blk):
            e = min(n_q, s + blk)
            nb = e - s
            lb = bound[: n * nb].view(n, nb)
            torch.mm(self.bound_rows, q_aug[s:e].T.contiguous(), out=lb)
            qs, qsq, qc = q[s:e], q_sq[s:e], q_const[s:e]
            # First candidates: the rows at each query's smallest bound.
            rows, cols = self._mask_pairs(torch.le(lb, lb.amin(dim=0), out=mask_buf[: n * nb].view(n, nb)), mask_buf)
            d1 = self._pair_distances(qs, qsq, rows, cols)
            inf = torch.full((nb,), float("inf"))
            best = inf.scatter_reduce(0, cols, d1, reduce="amin")
            # Every row whose bound is below the best exact distance may be nearer still.
            if self.exact:
                # The bound's own float32 rounding scales with the norms, not the distance.
                limit = best + EXACT_MARGIN * (qc + self._max_aug_sq) - qc
            else:
                limit = best * (1.0 + 1e-5) + 1e-6 - qc
            rows2, cols2 = self._mask_pairs(torch.lt(lb, limit, out=mask_buf[: n * nb].view(n, nb)), mask_buf)
            counts = torch.bincount(cols2, minlength=nb)
            heavy = counts > self.max_rescore
            if bool(heavy.any()):
                # Loose bound (features without low-rank structure): exact search is cheaper.
                keep = ~heavy[cols2]
                rows2, cols2 = rows2[keep], cols2[keep]
                hq = torch.nonzero(heavy)[:, 0]
                if self.exact:
                    _, hi = blocked_knn(qs[hq], self.bank, 1, self.bank_sq)
                else:
                    _, hi = torch_knn(qs[hq], self.bank, 1, self.bank_sq)
                # Distances from the same formula as every other query's.
                hd = self._pair_distances(qs, qsq, hi[:, 0], hq)[:, None]
                self.last_exact_fallbacks += int(hq.numel())
            d2 = self._pair_distances(qs, qsq, rows2, cols2)
            self.last_second_pass += int(rows2.numel())
            best2 = best.scatter_reduce(0, cols2, d2, reduce="amin")
            self.last_misses += int((best2 < best).sum())
            all_rows, all_cols, all_d = torch.cat([rows, rows2]), torch.cat([cols, cols2]), torch.cat([d1, d2])
            hit = all_d == best2[all_cols]
            # Equal distances: the lowest row index, as the exact search reports it.
            idx = torch.full((nb,), n, dtype=torch.long).scatter_reduce(0, all_cols[hit], all_rows[hit], reduce="amin")
            if bool(heavy.any()):
                best2[hq], idx[hq] = hd[:, 0], hi[:, 0]
            out_d[s:e], out_i[s:e] = best2, idx
        return out_d[:, None].numpy(), out_i[:, None].numpy()

    def _exact_search(self, q: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every query searched exactly (the bound is too loose for this bank)."""
        self.last_second_pass = self.last_misses = 0
        self.last_exact_fallbacks = int(q.shape[0])
        if self.use_bf16 and k == 1:
            if self._bf16 is None:
                self._bf16 = Bf16CandidateSearch(self.bank)
                self.backend = "reduced-bf16"
            d, i = self._bf16.search(q)
            if self._bf16.last_fallbacks * 4 > q.shape[0]:
                # Windows too wide for these features: the float32 search is cheaper.
                self.use_bf16, self.backend = False, "reduced-exact"
            return d, i
        if self.device.type == "cpu":
            # The blocked search is faster than torch_knn's product + top-k on the CPU.
            d, i = blocked_knn(q, self.bank.contiguous(), k, self.bank_sq)
        else:
            d, i = torch_knn(q, self.bank, k, self.bank_sq)
        if k == 1:
            d = self._pair_distances(q, (q * q).sum(dim=1), i[:, 0], torch.arange(q.shape[0], device=q.device))[:, None]
        return d.cpu().numpy(), i.cpu().numpy()

    @staticmethod
    def _mask_pairs(mask: torch.Tensor, buf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, column) of the True entries of ``mask``, a view on the front of ``buf``
        (``bf16_search.nonzero_pairs``: a scan of int64 words, 8 mask bytes each)."""
        return nonzero_pairs(buf, mask.numel(), mask.shape[1])

    def _pair_distances(self, q: torch.Tensor, q_sq: torch.Tensor, rows: torch.Tensor,
                        cols: torch.Tensor) -> torch.Tensor:
        """Exact squared distances of query ``cols[i]`` to bank row ``rows[i]`` (faiss's formula;
        sum((q - b)^2) in exact mode, as the blocked search returns)."""
        if self.exact:
            diff = self.bank.index_select(0, rows) - q.index_select(0, cols)
            return (diff * diff).sum(dim=1)
        dots = torch.bmm(self.bank.index_select(0, rows)[:, None, :], q.index_select(0, cols)[:, :, None])
        return (q_sq[cols] + self.bank_sq[rows] - 2.0 * dots[:, 0, 0]).clamp_min_(0.0)

    def _merge(self, best_d: torch.Tensor, best_i: torch.Tensor, rows: torch.Tensor,
               cols: torch.Tensor, d_extra: torch.Tensor, k: int) -> None:
        """Fold the bound pass's exact distances into the per-query best k, in place."""
        if k == 1:
            # Vectorised: the smallest extra distance per query, and whether it wins.
            inf = torch.full((best_d.shape[0],), float("inf"), device=best_d.device)
            best_extra = inf.scatter_reduce(0, rows, d_extra, reduce="amin")
            wins = best_extra < best_d[:, 0]
            if wins.any():
                hit = wins[rows] & (d_extra == best_extra[rows])
                best_d[rows[hit], 0] = d_extra[hit]
                best_i[rows[hit], 0] = cols[hit]
                self.last_misses += int(wins.sum())
            return
        for r in torch.unique(rows).tolist():
            sel = rows == r
            ds = torch.cat([best_d[r], d_extra[sel]])
            ids = torch.cat([best_i[r], cols[sel]])
            order = torch.topk(ds, k, largest=False, sorted=True).indices
            if not torch.equal(ids[order], best_i[r]):
                self.last_misses += 1
            best_d[r], best_i[r] = ds[order], ids[order]

    def _exact(self, q: torch.Tensor, q_sq: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Exact squared distances of each query to its candidate rows (Q, c): the pair formula."""
        owner = torch.arange(cand.shape[0], device=cand.device).repeat_interleave(cand.shape[1])
        return self._pair_distances(q, q_sq, cand.reshape(-1), owner).reshape(cand.shape)

    def patch_scores(self, queries: torch.Tensor | np.ndarray, k: int = 1) -> np.ndarray:
        """Mean squared distance to the k nearest bank rows, float32 (Q,)."""
        dist, _ = self.search(queries, k)
        return np.mean(dist, axis=-1).astype(np.float32)
