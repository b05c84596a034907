"""Nearest-row search with bfloat16 candidates and exact float32 re-scoring (fast path, CPU).

On CPUs with native bfloat16 matrix units (AMX, ``amx_bf16``) a bfloat16 product runs
about 9 x faster than the float32 one (784 x 7,840 x 152: 1.5 ms against 12.8 ms, one
thread, Intel Xeon). It is used here only to *find* candidates; every returned distance
is recomputed as ``sum((q - b)^2)`` in float32, as the exact path's blocked search
returns it, and a rigorous error bound decides which rows must be re-scored, so the row
found is the exact nearest row up to float32 near-ties, as in ``knn.blocked_knn``.

Per query q (queries and rows centred on the bank mean, which leaves distances as
they are and shrinks the norms the rounding scales with), one bfloat16 product gives
for every bank row b an approximation of

    V(b) = ||b||^2 - 2 q.b + ||q||^2 + E_q + 1  =  ||q - b||^2 + E_q + 1

where q and b are rounded to bfloat16 (relative error u = 2^-8 each) and the norms
are carried in three bfloat16 columns each (24 significant bits). The product
accumulates in float32 (v_acc) and rounds its result to bfloat16 (v_out). With B the
largest centred row norm,

    |v_acc - V| <= E_q = 2 (2u + u^2) ||q|| B + (float32 accumulation, generously)
    |v_out - v_acc| <= u v_acc

so every v_acc >= 1 > 0 and the bfloat16 results order like their int16 bit
patterns: the minimum, the compare and the scan run on integers. Let m = min v_out,
reached at b_m. The nearest row b* has V(b*) <= V(b_m) <= m / (1 - u) + E_q, so
every row with V(b) <= V(b*) has v_out(b) <= (m / (1 - u) + 2 E_q)(1 + u): those
rows are re-scored exactly and the smallest exact distance wins (ties: the lowest row
index, as faiss and the blocked search report). The rows found are the float64
nearest rows unless two exact float32 distances tie within float32 rounding.

When the bound is loose for a query (features whose nearest distances are small
against their norms: then many rows fall inside the window), that query is searched
with the float32 blocked search instead, so the worst case costs about the exact search.
Only k = 1 (PatchCore's score) and the CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from .knn import blocked_knn

#: Unit roundoff of bfloat16 (8 significant bits, round to nearest).
_U = 2.0**-8
#: Product elements per query block (bfloat16: 16 MB). Fewer, larger blocks measured
#: faster than cache-sized ones (per-operator overhead dominates): 784 queries x 7,840
#: rows, CPU ms per image at 1 / 2 threads: 1M elements 12.1 / 7.7, 2M 9.7 / 5.8,
#: 4M 8.5 / 4.8, 8M 7.5 / 4.2 (Intel Xeon, AMX).
_BLOCK_ELEMENTS = 8_000_000
#: The product's inner dimension is padded to a multiple of this (AMX tile rows).
_K_ALIGN = 32


class Bf16CandidateSearch:
    """k = 1 exact nearest-row search on the CPU with bfloat16 candidates (see module doc)."""

    def __init__(self, bank: torch.Tensor | np.ndarray) -> None:
        b = torch.as_tensor(bank, dtype=torch.float32).contiguous()
        self.size, self.dim = int(b.shape[0]), int(b.shape[1])
        self.bank = b
        self.bank_sq = (b * b).sum(dim=1)
        self.mean = b.mean(dim=0)
        centred = b - self.mean
        norm_sq = (centred.double() ** 2).sum(dim=1)
        self._max_norm = float(norm_sq.max().sqrt()) if self.size else 0.0
        self._k = -(-(self.dim + 6) // _K_ALIGN) * _K_ALIGN
        rows = torch.zeros(self.size, self._k, dtype=torch.bfloat16)
        rows[:, : self.dim] = centred.to(torch.bfloat16)
        rows[:, self.dim : self.dim + 3] = _split3(norm_sq)
        rows[:, self.dim + 3 : self.dim + 6] = 1.0
        self._rows_t = rows.T.contiguous()  # (K, N): query-major product q @ rows_t
        #: A query with more rows than this inside its window is searched in float32.
        self.max_rescore = max(64, self.size // 64)
        self.block = max(16, _BLOCK_ELEMENTS // max(1, self.size))
        #: Counters of the last search: pairs re-scored, queries searched in float32.
        self.last_rescored = 0
        self.last_fallbacks = 0

    def input_error(self, q_norm: torch.Tensor) -> torch.Tensor:
        """E_q of the module doc: bound on |v_acc - V| for centred query norms ``q_norm``."""
        big_b = self._max_norm
        qb = q_norm * big_b
        rounding = 2.0 * (2.0 * _U + _U * _U) * qb
        # float32 accumulation of K terms (<= 2^-24 K of their absolute sum), the 24-bit
        # norm splits and the query's float32 centring: covered ten times over.
        terms = 2.0 * qb + big_b * big_b + (q_norm + big_b) ** 2
        return rounding + 10.0 * (self._k + 4) * 2.0**-24 * terms

    @torch.no_grad()
    def search(self, queries: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each (Q, 1): squared L2 as ``sum((q - b)^2)`` in float32."""
        q = torch.as_tensor(queries).to("cpu", torch.float32).contiguous()
        n_q, n = int(q.shape[0]), self.size
        out_d = torch.empty(n_q)
        out_i = torch.empty(n_q, dtype=torch.long)
        self.last_rescored = self.last_fallbacks = 0
        if n_q == 0:
            return out_d[:, None].numpy(), out_i[:, None].numpy()
        qc = q - self.mean
        q_sq = (qc.double() ** 2).sum(dim=1)
        err = self.input_error(q_sq.sqrt())
        qa = torch.zeros(n_q, self._k, dtype=torch.bfloat16)
        # -2 q rounded to bfloat16 (the factor 2 is exact), ones against the bank's norm
        # parts, and the query's constant ||q||^2 + E_q + 1: every product is then >= 0, so
        # bfloat16 bit patterns order like the values (int16 compares, no float passes).
        qa[:, : self.dim] = (-2.0 * qc).to(torch.bfloat16)
        qa[:, self.dim : self.dim + 3] = 1.0
        # (+1: even an all-zero bank and query keep every product positive, never -0.)
        qa[:, self.dim + 3 : self.dim + 6] = _split3(q_sq + err + 1.0)
        blk = min(self.block, n_q)
        # The product's buffer, padded to whole int64 words for the candidate scan.
        prod = torch.empty(blk * n + 4, dtype=torch.bfloat16)
        for s in range(0, n_q, self.block):
            e = min(n_q, s + self.block)
            nb = e - s
            p = prod[: nb * n].view(nb, n)
            torch.mm(qa[s:e], self._rows_t, out=p)
            bits = p.view(torch.int16)
            m = bits.amin(dim=1).view(torch.bfloat16).double()
            # Every row at least as near as the nearest one has v_out <= limit (module doc).
            limit = (m / (1.0 - _U) + 2.0 * err[s:e]) * (1.0 + _U)
            # bfloat16 rounds to nearest (relative error <= u): raise the limit before.
            lim_bits = (limit * (1.0 + 2.0 * _U)).to(torch.bfloat16).view(torch.int16)
            # (bits - limit - 1) >> 15 is -1 exactly where bits <= limit (both are bit
            # patterns of non-negative bfloat16, so no overflow): one subtraction and one
            # shift in place, then the non-zero int64 words hold the candidates.
            bits.sub_((lim_bits.to(torch.int32) + 1).to(torch.int16)[:, None])
            bits.bitwise_right_shift_(15)
            cols, rows = nonzero_pairs(prod.view(torch.int16), nb * n, n)
            counts = torch.bincount(cols, minlength=nb)
            heavy = counts > self.max_rescore
            if bool(heavy.any()):
                keep = ~heavy[cols]
                cols, rows = cols[keep], rows[keep]
            qs = q[s:e]
            diff = self.bank.index_select(0, rows) - qs.index_select(0, cols)
            dist = (diff * diff).sum(dim=1)
            self.last_rescored += int(rows.numel())
            best = torch.full((nb,), float("inf")).scatter_reduce(0, cols, dist, reduce="amin")
            hit = dist == best[cols]
            idx = torch.full((nb,), n, dtype=torch.long).scatter_reduce(0, cols[hit], rows[hit], reduce="amin")
            if bool(heavy.any()):
                hq = torch.nonzero(heavy)[:, 0]
                hd, hi = blocked_knn(qs.index_select(0, hq), self.bank, 1, self.bank_sq)
                best[hq], idx[hq] = hd[:, 0], hi[:, 0]
                self.last_fallbacks += int(hq.numel())
            out_d[s:e], out_i[s:e] = best, idx
        return out_d[:, None].numpy(), out_i[:, None].numpy()


def _split3(values: torch.Tensor) -> torch.Tensor:
    """(n, 3) bfloat16 parts whose float sum is ``values`` (float64) to 24 significant bits."""
    v = values.double()
    a = v.to(torch.bfloat16)
    r = v - a.double()
    b = r.to(torch.bfloat16)
    c = (r - b.double()).to(torch.bfloat16)
    return torch.stack([a, b, c], dim=1)


def nonzero_pairs(buf: torch.Tensor, n_el: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the non-zero entries among the first ``n_el`` of ``buf``, read as a
    (n_el / width, width) matrix; ``buf`` holds 1-, 2- or 4-byte entries.

    Scans int64 words (several entries each: the matrices scanned here are sparse), then
    decodes only the non-zero words. The entries past ``n_el`` up to the next word
    boundary are cleared first (they may hold an earlier, larger block's data), so ``buf``
    must have room up to that boundary.
    """
    lanes = 8 // buf.element_size()
    n_words = (n_el + lanes - 1) // lanes
    buf[n_el : n_words * lanes] = 0
    words = buf[: n_words * lanes]
    hot = torch.nonzero(words.view(torch.int64))[:, 0]
    w_idx, lane = torch.nonzero(words.view(-1, lanes).index_select(0, hot), as_tuple=True)
    flat = hot[w_idx] * lanes + lane
    return flat // width, flat % width
