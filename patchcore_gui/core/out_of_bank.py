"""Out-of-bank scores: each training image scored against the final bank without its own rows.

Calibration needs scores of good images the bank has not memorised. Instead of holding
images out (a few scores, and a second bank to build), every readable training image is
scored against the final memory bank with the rows that came from it masked out
(``bank_source``): the score it would get from a model trained on all the other images
with the same coreset. The scoring is prediction's (``PatchCoreModel.score_tensor``):
mean squared distance to the k nearest rows, image score = max, Eq. 7 re-weighting when
on (its neighbour lookup masks the image's rows too), and the pixel value is the
maximum of the upsampled, blurred map. Cost: one exact k-NN pass per training image
over the bank, i.e. the cost of predicting the training set once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch

from .coreset import CancelledError
from .knn import CPU_BANK_BLOCK, direct_distances
from .maps import anomaly_maps
from .reweight import eq7_from_support


@torch.no_grad()
def masked_knn(queries: torch.Tensor, bank: torch.Tensor, k: int, excluded: torch.Tensor,
               bank_sq: torch.Tensor | None = None, block: int = CPU_BANK_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-NN of ``queries`` over the bank rows where ``excluded`` is False.

    The blocked search of ``knn.blocked_knn`` with the excluded rows' products set to
    infinity: rows are found by ``||b||^2 - 2 q.b`` per block and re-scored as
    ``sum((q - b)^2)`` in float32, so a distance is the same function of query and row
    as in prediction. Returns (Q, k') distances ascending and int64 indices, with
    k' = min(k, rows left).
    """
    q = queries.to(bank.device, torch.float32).contiguous()
    n = int(bank.shape[0])
    k = min(int(k), n - int(excluded.sum()))
    if k < 1:
        raise ValueError("no bank row is left once the image's own rows are excluded")
    if bank_sq is None:
        bank_sq = (bank * bank).sum(dim=1)
    top_v: torch.Tensor | None = None
    top_i: torch.Tensor | None = None
    for start in range(0, n, max(1, int(block))):
        end = min(n, start + block)
        part = torch.addmm(bank_sq[start:end][None, :], q, bank[start:end].T, alpha=-2.0)
        part.masked_fill_(excluded[start:end][None, :], float("inf"))
        v, i = torch.topk(part, min(k, end - start), dim=1, largest=False, sorted=True)
        i = i + start
        if top_v is None or top_i is None:
            top_v, top_i = v, i
        else:
            cat_v, cat_i = torch.cat([top_v, v], dim=1), torch.cat([top_i, i], dim=1)
            top_v, order = torch.topk(cat_v, k, dim=1, largest=False, sorted=True)
            top_i = torch.gather(cat_i, 1, order)
    assert top_i is not None
    dist = direct_distances(q, bank, top_i)
    order = torch.argsort(dist + 0.0, dim=1, stable=True)  # re-scored near-ties: lower index first
    return torch.gather(dist, 1, order), torch.gather(top_i, 1, order)


def out_of_bank_scores(
    feats: torch.Tensor,
    bank: torch.Tensor,
    bank_image: np.ndarray,
    grid: tuple[int, int],
    k: int,
    reweight: int,
    crop: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(image scores, map maxima), float64 (n_images,), each image without its own bank rows.

    Args:
        feats: (n_images, h*w, D) patch features of the training images, in bank_source order.
        bank: the final memory bank (rows, D).
        bank_image: (rows,) the training image each bank row came from (bank_source[:, 0]).
        grid: (h, w) of the feature grid; k, reweight, crop: the model's settings.
    """
    dev = torch.device(device)
    b = bank.to(dev, torch.float32).contiguous()
    b_sq = (b * b).sum(dim=1)
    owner = torch.as_tensor(np.asarray(bank_image, dtype=np.int64), device=dev)
    block = CPU_BANK_BLOCK if dev.type == "cpu" else 65536
    n_img = int(feats.shape[0])
    scores = np.empty(n_img, dtype=np.float64)
    maxima = np.empty(n_img, dtype=np.float64)
    for i in range(n_img):
        if cancel is not None and cancel.is_set():
            raise CancelledError("training cancelled")
        own = owner == i
        q = feats[i].to(dev, torch.float32)
        dist, idx = masked_knn(q, b, k, own, b_sq, block)
        # As score_tensor: float32 distances, float32 mean, max.
        patch = np.mean(dist.cpu().numpy(), axis=-1).astype(np.float32)
        score = patch.max()  # float32, as score_tensor stores it
        if reweight > 0:
            j = int(np.argmax(patch))
            m_star = int(idx[j, 0])
            _, support = masked_knn(b[m_star : m_star + 1], b, reweight, own, b_sq, block)
            score = score * np.float32(eq7_from_support(b, q[j], support[0].cpu().numpy()))
        scores[i] = float(score)
        maxima[i] = float(anomaly_maps(patch.reshape(1, *grid), crop).max())
        if progress is not None:
            progress(i + 1, n_img)
    return scores, maxima
