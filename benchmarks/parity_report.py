"""Print the measured parity errors that tests/core/test_parity.py bounds.

Default configuration (WR50, layer2+layer3, 224 px, fixed-seed random weights, 100 %
bank of two brick crops), two test crops: engine vs an independent float64 naive path
(general Unfold/adaptive-pooling features, torch.cdist, hand-written bilinear upsample,
scipy gaussian_filter); and closed-form vs general feature path.

    .venv/bin/python benchmarks/parity_report.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "core"))


def main() -> None:
    import torchvision
    from PIL import Image
    from scipy import ndimage
    from test_parity import _brick_images, bilinear_resize  # the tests' own naive helpers

    from patchcore_gui.core.engine import TrainConfig, train_model
    from patchcore_gui.core.features import EmbeddingConfig, _embed_closed_form, _embed_general

    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    wfile = tmp / "wr50.pth"
    torch.save(torchvision.models.wide_resnet50_2(weights=None).state_dict(), wfile)
    paths = _brick_images(tmp, 4)
    model = train_model(paths[:2], TrainConfig(coreset=1.0, holdout=0.0), weights=wfile, device="cpu", batch_size=2)
    scores, maps = model.predict([str(p) for p in paths[2:]])
    bt = torch.stack([model.preprocess(Image.open(p).convert("RGB")) for p in paths[:2]])
    bq = torch.stack([model.preprocess(Image.open(p).convert("RGB")) for p in paths[2:]])
    with torch.no_grad():
        ft, fq = model.extractor(bt), model.extractor(bq)
    bank, _ = _embed_general([ft["layer2"], ft["layer3"]], EmbeddingConfig())
    query, _ = _embed_general([fq["layer2"], fq["layer3"]], EmbeddingConfig())
    closed, _ = _embed_closed_form(fq["layer2"], fq["layer3"])
    print(f"closed form vs general features: max |diff| / max |f| = "
          f"{((closed - query).abs().max() / query.abs().max()).item():.2e}")
    bank64 = bank.reshape(-1, 1024).double()
    for i in range(2):
        d2 = torch.cdist(query[i].double(), bank64).square().min(dim=1).values.numpy()
        want_map = ndimage.gaussian_filter(bilinear_resize(d2.reshape(28, 28), 224, 224), sigma=4)
        s_err = abs(scores[i] - d2.max()) / d2.max()
        m_err = np.abs(maps[i] - want_map).max() / np.abs(want_map).max()
        print(f"test image {i}: score {scores[i]:.6g}, naive {d2.max():.6g}: relative error {s_err:.2e}; "
              f"map max relative error {m_err:.2e}")


if __name__ == "__main__":
    main()
