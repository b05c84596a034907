"""The embedded demo: built offline, trained once, cached, and good enough to show."""

from __future__ import annotations

import numpy as np

from patchcore_gui.core.datasets import mvtec_test_set
from patchcore_gui.core.demo import ensure_demo
from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.metrics import image_auroc
from patchcore_gui.core.model import PatchCoreModel


def test_demo_builds_trains_caches_and_separates_defects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "demo" / "brick"
    model_path, folder = ensure_demo(root)
    assert model_path.is_file() and folder == root / "test"
    model = PatchCoreModel.load(model_path, device="cpu")
    assert model.config.backbone == "efficientnet_lite0"
    assert np.isfinite(model.image_threshold)
    # Second call reuses both the data set and the model.
    mtime = model_path.stat().st_mtime_ns
    assert ensure_demo(root) == (model_path, folder)
    assert model_path.stat().st_mtime_ns == mtime
    # The demo is worth showing: defects score above good tiles.
    test = mvtec_test_set(root)
    scores = np.concatenate([r.scores for r in iter_predict(model, test, batch_size=16)])
    assert image_auroc(scores, test.labels) > 0.95
    # A demo model cached by a version before the BatchNorm warm-up is trained again.
    import shutil
    from pathlib import Path

    shutil.copyfile(Path(__file__).resolve().parents[1] / "data" / "legacy_v1.patchcore", model_path)
    assert ensure_demo(root) == (model_path, folder)
    assert PatchCoreModel.load(model_path, device="cpu").metadata["bn_warmup"] == "official"
