"""Paper Eq. 7: the image-score re-weighting by how dense the bank is around the nearest row.

Off by default (as in the reference); ``--reweight N`` turns it on at training and the
model applies it when scoring.
"""

from __future__ import annotations

import numpy as np
import torch

from .search import NearestNeighbourSearch


def eq7_weight(search: NearestNeighbourSearch, bank: torch.Tensor, feats: torch.Tensor, patch: np.ndarray,
               idx: np.ndarray, neighbours: int) -> float:
    """Paper Eq. 7 weight: 1 - softmax, over Euclidean distances from the most anomalous
    test patch to its nearest bank row m* and m*'s ``neighbours`` nearest bank rows, taken at m*.

    A test patch whose nearest normal row sits in a sparse part of the bank (rare but
    normal) keeps more of its score than one next to a dense cluster.
    """
    j = int(np.argmax(patch))
    m_star = int(idx[j, 0])
    b = min(int(neighbours), int(bank.shape[0]))
    _, support = search.search(bank[m_star : m_star + 1], b)
    return eq7_from_support(bank, feats[j], support[0])


def eq7_from_support(bank: torch.Tensor, query: torch.Tensor, support: np.ndarray) -> float:
    """The Eq. 7 weight from the hot patch's feature and m*'s neighbour rows (m* first).

    Shared with calibration, which finds the support in a bank without the image's own rows.
    """
    rows = bank[torch.as_tensor(np.asarray(support), dtype=torch.int64)].to("cpu", torch.float32)
    q = query.detach().to("cpu", torch.float32)
    d = torch.linalg.vector_norm(rows - q[None, :], dim=1).double()
    # The neighbour list starts with m* itself (its own nearest row in the bank).
    return float(1.0 - torch.softmax(d, dim=0)[0].item())
