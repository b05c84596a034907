"""Greedy coreset: same picks as the straightforward algorithm, sizes, determinism, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from patchcore_gui.core.coreset import (
    CancelledError,
    coreset_size,
    greedy_coreset,
    greedy_coreset_reference,
    projection_matrix,
)


def clustered(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(40, d, generator=g) * 4
    return centres[torch.randint(0, 40, (n,), generator=g)] + torch.randn(n, d, generator=g)


@pytest.mark.parametrize("data", ["clustered", "gaussian", "low_dim"])
def test_pruned_selection_equals_straightforward(data: str) -> None:
    if data == "clustered":
        x = clustered(6000, 256, 0)
    elif data == "gaussian":
        x = torch.randn(6000, 256, generator=torch.Generator().manual_seed(1))
    else:
        x = clustered(5000, 64, 2)  # <= 128 dims: no projection
    fast = greedy_coreset(x, 0.1, seed=3)
    ref = greedy_coreset_reference(x, 0.1, seed=3)
    assert len(fast) == 600 if data != "low_dim" else len(fast) == 500
    np.testing.assert_array_equal(fast, ref)


def test_sizes_and_identity() -> None:
    x = clustered(1000, 32, 4)
    assert len(greedy_coreset(x, 0.1)) == coreset_size(1000, 0.1) == 100
    np.testing.assert_array_equal(greedy_coreset(x, 1.0), np.arange(1000))
    # The reference counts int(N * p): 209 MVTec images x 784 patches at 10 % -> 16,385.
    assert coreset_size(209 * 784, 0.1) == 16385


def test_picks_are_distinct_and_spread() -> None:
    x = clustered(3000, 64, 5)
    picks = greedy_coreset(x, 0.02, seed=0)
    assert len(set(picks.tolist())) == len(picks)
    # Farthest-point picking covers many of the 40 clusters within 60 picks.
    centres_hit = {tuple(torch.round(x[i] / 4).int().tolist()[:4]) for i in picks}
    assert len(centres_hit) > 20


def test_seed_determinism_and_variation() -> None:
    x = clustered(3000, 200, 6)
    a = greedy_coreset(x, 0.05, seed=7)
    b = greedy_coreset(x, 0.05, seed=7)
    c = greedy_coreset(x, 0.05, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_projection_is_uniform_in_reference_bounds() -> None:
    p = projection_matrix(1024, seed=0)
    assert p.shape == (1024, 128)
    assert p.abs().max() <= 1 / 32 and p.abs().max() > 0.99 / 32


def test_cancel_raises() -> None:
    x = clustered(4000, 32, 9)
    ev = threading.Event()
    ev.set()
    with pytest.raises(CancelledError):
        greedy_coreset(x, 0.5, cancel=ev)


def test_bad_fraction() -> None:
    with pytest.raises(ValueError):
        greedy_coreset(torch.zeros(10, 4), 0.0)
