"""Nearest-neighbour search: the torch path agrees with faiss on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchcore_gui.core.search import NearestNeighbourSearch, torch_knn


@pytest.mark.parametrize("k", [1, 3])
def test_torch_search_matches_faiss(k: int) -> None:
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(5000, 64, generator=g)
    q = torch.randn(300, 64, generator=g)
    f = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu")
    t = NearestNeighbourSearch(bank, "cpu", backend="torch")
    fd, fi = f.search(q, k)
    td, ti = t.search(q, k)
    np.testing.assert_array_equal(fi, ti)
    np.testing.assert_allclose(fd, td, rtol=1e-5, atol=1e-4)
    # Squared L2, checked against an exact float64 computation.
    exact = torch.cdist(q.double(), bank.double()).square()
    want = exact.topk(k, largest=False).values.numpy()
    np.testing.assert_allclose(fd, want, rtol=1e-4, atol=1e-3)


def test_torch_knn_chunking_is_exact() -> None:
    g = torch.Generator().manual_seed(1)
    bank = torch.randn(1000, 16, generator=g)
    q = torch.randn(50, 16, generator=g)
    d1, i1 = torch_knn(q, bank, 4, chunk=97)
    d2, i2 = torch_knn(q, bank, 4, chunk=100000)
    assert torch.equal(i1, i2)
    assert torch.allclose(d1, d2)


def test_patch_scores_mean_of_k() -> None:
    bank = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    s = NearestNeighbourSearch(bank, "cpu")
    q = torch.tensor([[1.0, 0.0]])
    assert s.patch_scores(q, 1)[0] == pytest.approx(1.0)
    assert s.patch_scores(q, 2)[0] == pytest.approx((1.0 + 4.0) / 2)
    assert s.backend == "blocked"  # 2-d rows: no pruning


def test_reduced_bound_search_finds_exact_neighbours() -> None:
    from patchcore_gui.core.reduced_search import ReducedBoundSearch

    g = torch.Generator().manual_seed(5)
    # Low-rank structure plus noise, like patch features.
    basis = torch.randn(32, 256, generator=g)
    bank = torch.randn(4000, 32, generator=g) @ basis + 0.3 * torch.randn(4000, 256, generator=g)
    q = torch.randn(500, 32, generator=g) @ basis + 0.3 * torch.randn(500, 256, generator=g)
    exact = NearestNeighbourSearch(bank, "cpu")
    fast = ReducedBoundSearch(bank, "cpu", rank=16, candidates=4)
    for k in (1, 3):
        ed, ei = exact.search(q, k)
        fd, fi = fast.search(q, k)
        np.testing.assert_array_equal(fi, ei)
        np.testing.assert_allclose(fd, ed, rtol=1e-4)
    # The bound pass re-scored some rows beyond the first candidates.
    assert fast.last_second_pass >= 0


def test_reduced_bound_search_is_blockwise_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries processed in several blocks (a ragged last one) give the exact neighbours."""
    from patchcore_gui.core import reduced_search

    monkeypatch.setattr(reduced_search, "_CPU_BLOCK_ELEMENTS", 3000 * 37)  # 37-query blocks
    g = torch.Generator().manual_seed(11)
    basis = torch.randn(24, 128, generator=g)
    bank = torch.randn(3000, 24, generator=g) @ basis + 0.2 * torch.randn(3000, 128, generator=g)
    q = torch.randn(200, 24, generator=g) @ basis + 0.2 * torch.randn(200, 128, generator=g)
    fast = reduced_search.ReducedBoundSearch(bank, "cpu", rank=8, candidates=1)
    assert fast.block == 37
    fast.max_rescore = bank.shape[0]  # no exact fallback: every query takes the bound pass
    exact = NearestNeighbourSearch(bank, "cpu")
    for k in (1, 2):
        ed, ei = exact.search(q, k)
        fd, fi = fast.search(q, k)
        np.testing.assert_array_equal(fi, ei)
        np.testing.assert_allclose(fd, ed, rtol=1e-4)
    # A rank-8 bound with one candidate cannot settle every query: the bound pass ran
    # and found nearer rows than the first candidate.
    fast.search(q, 1)
    assert fast.last_second_pass > 0 and fast.last_misses > 0


def test_reduced_bound_search_falls_back_to_exact_on_structureless_data() -> None:
    """Isotropic random rows make the principal-subspace bound useless; the search must
    stay exact and bounded by searching those queries exactly, not re-score every row."""
    from patchcore_gui.core.reduced_search import ReducedBoundSearch

    g = torch.Generator().manual_seed(3)
    bank = torch.randn(5000, 256, generator=g)
    q = torch.randn(300, 256, generator=g)
    fast = ReducedBoundSearch(bank, "cpu", rank=16, candidates=2)
    fd, fi = fast.search(q, 1)
    ed, ei = NearestNeighbourSearch(bank, "cpu").search(q, 1)
    np.testing.assert_array_equal(fi, ei)
    np.testing.assert_allclose(fd, ed, rtol=1e-4)
    assert fast.last_exact_fallbacks > 0
    assert fast.last_second_pass <= q.shape[0] * fast.max_rescore


def test_reduced_bound_search_chooses_its_rank_from_the_first_queries() -> None:
    """Auto rank: small where the bank is nearly low-rank, exact search where no
    projection helps; the choice changes speed only, never a returned value."""
    from patchcore_gui.core.reduced_search import ReducedBoundSearch

    g = torch.Generator().manual_seed(8)
    basis = torch.randn(48, 256, generator=g)
    bank = torch.randn(3000, 48, generator=g) @ basis + 0.05 * torch.randn(3000, 256, generator=g)
    q = torch.randn(300, 48, generator=g) @ basis + 0.05 * torch.randn(300, 256, generator=g)
    auto = ReducedBoundSearch(bank, "cpu")
    assert auto.auto_rank and auto.rank == 128  # provisional until real queries arrive
    ad, ai = auto.search(q, 1)
    assert not auto.auto_rank and auto.rank == 64 and auto.backend == "reduced-64"
    assert auto.last_exact_fallbacks == 0
    ed, ei = NearestNeighbourSearch(bank, "cpu").search(q, 1)
    np.testing.assert_array_equal(ai, ei)
    for rank in (16, 192):
        fd, fi = ReducedBoundSearch(bank, "cpu", rank=rank).search(q, 1)
        np.testing.assert_array_equal(fi, ai)
        np.testing.assert_array_equal(fd, ad)  # same formula whatever the rank

    iso = torch.randn(3000, 256, generator=g)
    qi = torch.randn(300, 256, generator=g)
    loose = ReducedBoundSearch(iso, "cpu")
    loose.use_bf16 = False  # the float32 fallback on every CPU (bfloat16's: test_bf16_search.py)
    ld, li = loose.search(qi, 1)
    assert loose.exact_only and loose.backend == "reduced-exact"
    assert loose.last_exact_fallbacks == 300
    ed, ei = NearestNeighbourSearch(iso, "cpu").search(qi, 1)
    np.testing.assert_array_equal(li, ei)
    np.testing.assert_allclose(ld, ed, rtol=1e-4)
    fd, fi = ReducedBoundSearch(iso, "cpu", rank=32).search(qi, 1)
    np.testing.assert_array_equal(fi, li)
    np.testing.assert_array_equal(fd, ld)
    # Few queries (the reweighting's single-row searches) do not calibrate.
    few = ReducedBoundSearch(bank, "cpu")
    few.search(q[:5], 1)
    assert few.auto_rank and few.rank == 128


# --------------------------------------------------------------------------- blocked (CPU default)


def _low_rank_rows(n: int, q: int, dim: int, rank: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bank and query rows with low-rank structure plus noise, non-negative like ReLU
    features, with large norms against their distances (where the product formula
    loses digits): the shape of real patch features."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(rank, dim, generator=g)
    bank = (torch.randn(n, rank, generator=g) @ basis + noise * torch.randn(n, dim, generator=g)).relu() + 1.0
    qs = (torch.randn(q, rank, generator=g) @ basis + noise * torch.randn(q, dim, generator=g)).relu() + 1.0
    return bank, qs


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("dim", [64, 152])
def test_blocked_matches_faiss_on_random_rows(k: int, dim: int) -> None:
    """Below faiss's BLAS threshold (queries x dim < 128,000) faiss sums (q - b)^2 per
    pair: the blocked search's re-scored distances are that sum, to float32 rounding."""
    g = torch.Generator().manual_seed(dim + k)
    bank = torch.randn(3000, dim, generator=g)
    q = torch.randn(700, dim, generator=g)
    fd, fi = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu").search(q, k)
    blocked = NearestNeighbourSearch(bank, "cpu")
    assert blocked.backend == "blocked"
    bd, bi = blocked.search(q, k)
    np.testing.assert_array_equal(bi, fi)
    np.testing.assert_allclose(bd, fd, rtol=2e-6, atol=0)
    assert bd.dtype == np.float32 and bi.dtype == np.int64 and bd.shape == (700, k)


@pytest.mark.parametrize("k", [1, 4])
def test_blocked_matches_faiss_on_real_shaped_rows(k: int) -> None:
    """784 queries x 1024 dims (one WR50 image; faiss takes its BLAS path): same rows,
    distances equal to float64 truth closer than faiss's own product formula gets."""
    bank, q = _low_rank_rows(5000, 784, 1024, 24, 0.3, seed=2)
    fd, fi = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu").search(q, k)
    bd, bi = NearestNeighbourSearch(bank, "cpu").search(q, k)
    np.testing.assert_array_equal(bi, fi)
    np.testing.assert_allclose(bd, fd, rtol=1e-5, atol=0)
    truth = torch.cdist(q.double(), bank.double()).square().topk(k, largest=False).values.numpy()
    assert np.abs(bd - truth).max() <= np.abs(fd - truth).max()
    np.testing.assert_allclose(bd, truth, rtol=1e-6)


def test_blocked_result_does_not_depend_on_batch_mates() -> None:
    """A query's distance and row are the same alone, with other queries, or at another
    position: an image's scores must not change with the batch it came in."""
    bank, q = _low_rank_rows(2500, 300, 152, 16, 0.2, seed=4)
    s = NearestNeighbourSearch(bank, "cpu")
    all_d, all_i = s.search(q, 1)
    for j in (0, 17, 299):
        d1, i1 = s.search(q[j : j + 1], 1)
        assert d1[0, 0] == all_d[j, 0] and i1[0, 0] == all_i[j, 0]
    rev_d, rev_i = s.search(q.flip(0), 1)
    np.testing.assert_array_equal(rev_d[::-1], all_d)
    np.testing.assert_array_equal(rev_i[::-1], all_i)


def test_blocked_ties_and_block_edges() -> None:
    """Equal rows in different blocks: the lower index wins (faiss's rule); blocks smaller
    than k and a ragged last block still give the exact k nearest."""
    from patchcore_gui.core.search import blocked_knn

    g = torch.Generator().manual_seed(9)
    bank = torch.randn(1000, 32, generator=g)
    bank[900] = bank[5]  # duplicate of a row in the first block
    q = bank[5:6] + 1e-3 * torch.randn(1, 32, generator=g)
    d, i = blocked_knn(q, bank, 1, block=128)
    assert int(i[0, 0]) == 5
    qs = torch.randn(50, 32, generator=g)
    want_d, want_i = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu").search(qs, 7)
    for block in (3, 97, 1000, 5000):
        bd, bi = blocked_knn(qs, bank, 7, block=block)
        np.testing.assert_array_equal(bi.numpy(), want_i)
        np.testing.assert_allclose(bd.numpy(), want_d, rtol=2e-6)
    d_all, i_all = blocked_knn(qs[:2], bank[:5], 9)  # k above the bank size: every row
    assert d_all.shape == (2, 5) and sorted(i_all[0].tolist()) == [0, 1, 2, 3, 4]
    assert bool((d_all[:, 1:] >= d_all[:, :-1]).all())


def test_blocked_distances_are_exact_where_the_product_formula_cancels() -> None:
    """Rows far from the origin and close to each other: ||q||^2 + ||b||^2 - 2 q.b loses
    most digits in float32 (which row wins is then a near-tie for faiss's BLAS path as
    well); the distance returned for the row found is re-scored and keeps them."""
    from patchcore_gui.core.search import blocked_knn

    g = torch.Generator().manual_seed(12)
    centre = 100.0 + torch.rand(1, 256, generator=g)
    bank = centre + 0.01 * torch.randn(400, 256, generator=g)
    q = centre + 0.01 * torch.randn(20, 256, generator=g)
    d, i = blocked_knn(q, bank, 2)
    truth = (q.double()[:, None, :] - bank.double()[i]).square().sum(dim=2)
    np.testing.assert_allclose(d.numpy(), truth.numpy(), rtol=1e-5)
    formula, _ = torch_knn(q, bank, 1)
    assert float((formula[:, 0].double() - truth[:, 0]).abs().max()) > 100 * float((d[:, 0].double() - truth[:, 0]).abs().max())


def test_pruned_is_the_default_for_wide_rows_and_matches_faiss_and_blocked() -> None:
    """1024-d rows with low-rank structure (WR50's layout): the CPU default prunes with
    the principal-subspace bound, and still returns faiss's rows and the blocked
    search's distances; k > 1 and few queries take the blocked search."""
    bank, q = _low_rank_rows(6000, 784, 1024, 24, 0.3, seed=21)
    pruned = NearestNeighbourSearch(bank, "cpu")
    assert pruned.backend == "pruned"
    pd, pi = pruned.search(q, 1)
    assert pruned._pruned is not None and pruned._pruned.backend.startswith("pruned-")
    assert pruned._pruned.last_exact_fallbacks < q.shape[0] // 10  # the bound did the work
    fd, fi = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu").search(q, 1)
    bd, bi = NearestNeighbourSearch(bank, "cpu", backend="blocked").search(q, 1)
    np.testing.assert_array_equal(pi, fi)
    np.testing.assert_array_equal(pi, bi)
    np.testing.assert_allclose(pd, bd, rtol=1e-6)
    for k, n in ((3, 784), (1, 5)):
        kd, ki = pruned.search(q[:n], k)
        wd, wi = NearestNeighbourSearch(bank, "cpu", backend="blocked").search(q[:n], k)
        np.testing.assert_array_equal(ki, wi)
        np.testing.assert_allclose(kd, wd, rtol=1e-6)


def test_pruned_stays_exact_where_the_bound_is_loose() -> None:
    """Isotropic rows: no projection bounds them usefully; the pruned search falls back
    to the blocked one (whole searches or per query) and returns the same rows."""
    from patchcore_gui.core.search import PRUNE_MIN_DIM

    g = torch.Generator().manual_seed(22)
    bank = torch.randn(3000, PRUNE_MIN_DIM, generator=g)
    q = torch.randn(200, PRUNE_MIN_DIM, generator=g)
    s = NearestNeighbourSearch(bank, "cpu")
    assert s.backend == "pruned"
    d, i = s.search(q, 1)
    bd, bi = NearestNeighbourSearch(bank, "cpu", backend="blocked").search(q, 1)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-6)
    assert s._pruned is not None and s._pruned.last_exact_fallbacks > 0
