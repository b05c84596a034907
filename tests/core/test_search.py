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
    assert s.backend == "faiss-cpu"


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
