"""End to end: the exact path's scores are faiss IndexFlatL2's, whichever CPU search runs.

The model's default CPU search (``blocked`` below 512 dims, ``pruned`` from there) is
swapped for faiss ``IndexFlatL2`` on the same model and images; image scores must agree
to 1e-5 relative and patch grids to float32 rounding, through ``iter_predict`` with its
prefetch thread and different batch sizes.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.search import NearestNeighbourSearch


def _run(model: PatchCoreModel, paths: list[str], batch: int) -> tuple[np.ndarray, np.ndarray]:
    out = list(iter_predict(model, paths, batch_size=batch, grid_dtype=np.float32))
    return np.concatenate([r.scores for r in out]), np.concatenate([r.grids for r in out])


def test_exact_scores_equal_faiss_end_to_end(tiny_model_path: Path, image_dirs: dict[str, Path]) -> None:
    paths = sorted(str(p) for p in image_dirs["test"].glob("*.png"))
    paths += sorted(str(p) for p in image_dirs["train"].glob("*.png"))[:4]
    model = PatchCoreModel.load(tiny_model_path, device="cpu", precision="exact")
    assert model.search.backend in ("blocked", "pruned")
    ref = copy.copy(model)
    ref.search = NearestNeighbourSearch(model.bank, "cpu", backend="faiss-cpu")
    s_ref, g_ref = _run(ref, paths, 3)
    for batch in (1, 4):
        s, g = _run(model, paths, batch)
        np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=0)
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-6 * float(g_ref.max()))
    assert float(s_ref.max()) > 0 and np.all(np.isfinite(s_ref))


def test_pruned_exact_scores_equal_faiss_on_wide_features(tiny_model_path: Path, image_dirs: dict[str, Path]) -> None:
    """The 1024-d reference layout searched by the pruned default: the same image
    scores as faiss's rows give (faiss's own 1024-d values carry float32 cancellation,
    so the comparison is with float64 distances to faiss's rows)."""
    model = PatchCoreModel.load(tiny_model_path, device="cpu", precision="exact")
    paths = sorted(str(p) for p in image_dirs["test"].glob("*.png"))
    feats, _ = model.embed(torch.stack([model.preprocess(Image.open(p).convert("RGB")) for p in paths]))
    # Widen the features to 1024 dims with a fixed orthonormal map: distances unchanged.
    q_basis, _ = torch.linalg.qr(torch.randn(1024, feats.shape[-1], generator=torch.Generator().manual_seed(0)))
    bank = model.bank @ q_basis.T
    wide = NearestNeighbourSearch(bank, "cpu")
    assert wide.backend == "pruned"
    faiss_idx = NearestNeighbourSearch(bank, "cpu", backend="faiss-cpu")
    for f in feats:
        q = f @ q_basis.T
        d, i = wide.search(q, 1)
        _, fi = faiss_idx.search(q, 1)
        truth = (q.double() - bank.double()[torch.from_numpy(fi[:, 0])]).square().sum(dim=1).numpy()
        assert abs(float(d.max()) - float(truth.max())) <= 1e-5 * float(truth.max())
        assert np.mean(i[:, 0] == fi[:, 0]) > 0.99
