"""Fixtures for engine tests: generated images and a tiny real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured, with_defect


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train/ (12 good), test/ (3 good + 3 defect, defect at a known place)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    (root / "train").mkdir()
    (root / "test").mkdir()
    for i in range(12):
        Image.fromarray(textured(rng)).save(root / "train" / f"good_{i:02d}.png")
    for i in range(3):
        Image.fromarray(textured(rng)).save(root / "test" / f"a_good_{i}.png")
        Image.fromarray(with_defect(textured(rng), 40, 44)).save(root / "test" / f"b_bad_{i}.png")
    return {"root": root, "train": root / "train", "test": root / "test"}


@pytest.fixture(scope="session")
def tiny_model_path(image_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real EfficientNet-Lite0 model (offline ImageNet weights) at a small crop."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    paths = sorted(image_dirs["train"].glob("*.png"))
    model = train_model(
        paths,
        TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5, holdout=0.25),
        device="cpu",
        batch_size=4,
    )
    out = tmp_path_factory.mktemp("model") / "tiny.patchcore"
    model.save(out)
    return out
