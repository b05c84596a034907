"""benchmarks/bench_predict.py's per-stage table must keep running against the engine's
modules (an import moved by a refactor once broke it unnoticed): its ``stages`` runs on
the tiny model for the exact and fast paths, and its search stage gives the engine's
own patch scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.model import PatchCoreModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_stage_table_runs_on_the_engine(precision: str, tiny_model_path: Path, image_dirs: dict[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("bench_predict", None)
    import bench_predict

    paths = sorted(image_dirs["test"].glob("*.png"))[:4]
    model = PatchCoreModel.load(tiny_model_path, device="cpu", precision=precision)
    res = bench_predict.stages(model, paths, 2)
    assert list(res) == list(bench_predict.STAGES)
    assert all(wall >= 0 and cpu >= 0 for wall, cpu in res.values())
    assert res["backbone"][1] > 0 and res["search"][1] > 0
    # The engine scores the same images: same path, so the benchmark times real work.
    scores = np.concatenate([r.scores for r in iter_predict(model, [str(p) for p in paths], batch_size=2)])
    assert np.all(np.isfinite(scores)) and scores.shape == (4,)
