"""The bfloat16-candidate search returns the exact search's rows and distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchcore_gui.core.bf16_search import Bf16CandidateSearch
from patchcore_gui.core.knn import blocked_knn
from patchcore_gui.core.reduced_search import ReducedBoundSearch


def _exact(q: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    d, i = blocked_knn(q, b, 1, (b * b).sum(dim=1))
    return d.numpy(), i.numpy()


def _clustered(n: int, dim: int, seed: int, offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(32, dim, generator=g) * 3.0
    return centres[torch.randint(0, 32, (n,), generator=g)] + torch.randn(n, dim, generator=g) + offset


@pytest.mark.parametrize("offset", [0.0, 40.0])
def test_same_rows_and_bit_equal_distances_as_the_blocked_search(offset: float) -> None:
    # offset: features far from the origin (post-ReLU), where centring keeps the bound tight.
    bank = _clustered(3000, 152, 0, offset)
    queries = torch.cat([_clustered(500, 152, 1, offset), bank[:20]])  # and exact hits (distance 0)
    s = Bf16CandidateSearch(bank)
    d, i = s.search(queries)
    want_d, want_i = _exact(queries, bank)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(d, want_d)
    assert np.all(d[-20:] == 0) and np.array_equal(i[-20:, 0], np.arange(20))
    assert s.last_fallbacks == 0 and s.last_rescored >= len(queries)


def test_near_ties_below_bfloat16_resolution_are_resolved_exactly() -> None:
    # 40 rows at almost the same distance from each query (relative gaps 1e-4, far below
    # bfloat16's 2^-8): the product cannot order them; the exact re-scoring must.
    g = torch.Generator().manual_seed(2)
    dim, n_q = 152, 12
    queries = torch.randn(n_q, dim, generator=g) * 4.0
    rows, truth = [], []
    for qi in range(n_q):
        u = torch.randn(40, dim, generator=g, dtype=torch.float64)
        u = u / u.norm(dim=1, keepdim=True)
        radii = 2.0 + 1e-4 * torch.randperm(40, generator=g).double()
        near = queries[qi].double() + radii[:, None] * u
        truth.append(len(rows) * 40 + int(radii.argmin()))
        rows.append(near.float())
    far = torch.randn(2000, dim, generator=g) * 4.0 + 30.0
    bank = torch.cat([*rows, far])
    s = Bf16CandidateSearch(bank)
    d, i = s.search(queries)
    exact64 = ((queries.double()[:, None, :] - bank.double()[None]) ** 2).sum(dim=2).argmin(dim=1).numpy()
    np.testing.assert_array_equal(exact64, truth)
    np.testing.assert_array_equal(i[:, 0], truth)
    # The distance is sum((q - b)^2) in float32 of that row. (The float32 product that the
    # blocked search ranks with loses these 1e-4 gaps to cancellation against the norms.)
    direct = ((bank[torch.as_tensor(truth)] - queries) ** 2).sum(dim=1)
    np.testing.assert_array_equal(d[:, 0], direct.numpy())
    assert s.last_fallbacks == 0 and s.last_rescored >= 40 * n_q  # every tied row was re-scored


def test_ties_report_the_lowest_row_and_results_do_not_depend_on_batch_mates() -> None:
    base = _clustered(800, 152, 3)
    bank = torch.cat([base, base[:200]])  # rows 800..999 duplicate rows 0..199
    queries = _clustered(300, 152, 4)
    s = Bf16CandidateSearch(bank)
    d, i = s.search(queries)
    assert np.all(i < 800)
    np.testing.assert_array_equal(i, _exact(queries, bank)[1])
    for k in (0, 17, 299):
        d1, i1 = s.search(queries[k : k + 1])
        assert d1[0, 0] == d[k, 0] and i1[0, 0] == i[k, 0]
    # Queries cut into many blocks (a large bank's case): the same answers.
    s.block = 16
    d2, i2 = s.search(queries)
    np.testing.assert_array_equal(i2, i)
    np.testing.assert_array_equal(d2, d)


def test_wide_windows_fall_back_to_the_float32_search() -> None:
    # Tight clusters far apart: within a cluster distances are ~1e-6 of the norms, so
    # every member of the nearest cluster lies inside the bfloat16 window.
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(10, 64, generator=g) * 100.0
    bank = centres.repeat_interleave(200, dim=0) + 0.01 * torch.randn(2000, 64, generator=g)
    queries = centres[torch.arange(30) % 10] + 0.01 * torch.randn(30, 64, generator=g)
    s = Bf16CandidateSearch(bank)
    d, i = s.search(queries)
    assert s.last_fallbacks == 30
    want_d, want_i = _exact(queries, bank)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(d, want_d)


def test_the_fast_path_search_uses_it_where_the_bound_does_not_pay() -> None:
    bank = _clustered(2000, 152, 6)
    queries = _clustered(200, 152, 7)
    fast = ReducedBoundSearch(bank, "cpu")
    fast.use_bf16 = True  # as on a CPU with native bfloat16 (AMX / AVX512_BF16)
    d, i = fast.search(queries)
    assert fast.backend == "reduced-bf16"
    plain = ReducedBoundSearch(bank, "cpu")
    plain.use_bf16 = False
    d2, i2 = plain.search(queries)
    assert plain.backend == "reduced-exact"
    np.testing.assert_array_equal(i, i2)
    # Its distances are sum((q - b)^2), as the exact path's blocked search returns them
    # (the float32 product form of the fast path's other searches agrees to rounding).
    np.testing.assert_array_equal(d, _exact(queries, bank)[0])
    np.testing.assert_allclose(d, d2, rtol=1e-5)
    # The exact path never uses bfloat16 candidates.
    assert not ReducedBoundSearch(bank, "cpu", exact=True).use_bf16
