"""Small, fast real models and a hand-made run file for the mutation-guard tests (a plain module).

A resnet18 with fixed-seed random weights at crop 32 trains in a few seconds on a
2-core CPU: its layer2 grid is 4 x 4, so every image gives exactly 16 bank rows of
1024 dims (the reference layout). Row counts in the tests are therefore literals.
"""

from __future__ import annotations

import functools
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tests_helpers import textured

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.results import BatchResult
from patchcore_gui.core.run_file import RunFile

#: Patch rows per 32 x 32 crop with resnet18 layers 2 and 3 (layer2 stride 8 -> 4 x 4).
ROWS_PER_IMAGE = 16
CROP = 32
RESIZE = 36


@functools.lru_cache(maxsize=1)
def _r18_state() -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


def r18_weights() -> dict[str, torch.Tensor]:
    """A fresh copy of fixed-seed random resnet18 weights (no download is possible here)."""
    return {k: v.clone() for k, v in _r18_state().items()}


def write_images(folder: Path, count: int, seed: int, prefix: str = "img") -> list[Path]:
    """``count`` stripy 40 x 40 PNGs named ``<prefix>_NN.png``; returns their sorted paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        p = folder / f"{prefix}_{i:02d}.png"
        Image.fromarray(textured(rng, 40, 40)).save(p)
        paths.append(p)
    return paths


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared Euclidean distances between rows of ``a`` and ``b``, in float64, brute force."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ((a64[:, None, :] - b64[None, :, :]) ** 2).sum(axis=2)


# --------------------------------------------------------------------------- boundary run file

#: (file, label, score): 0 good / 1 defect; NaN is the unreadable image.
BOUNDARY_ROWS = [
    ("good_a.png", 0, 0.5),
    ("good_b.png", 0, 1.25),
    ("good_c.png", 0, 2.0),  # equal to the run's threshold
    ("bad_a.png", 1, 3.0),
    ("bad_b.png", 1, 4.5),
    ("broken.png", 0, float("nan")),
]
RUN_THRESHOLD = 2.0


def _tiny_model() -> Any:
    """A real model object (random resnet18 stem) only to give the run file its facts."""
    from patchcore_gui.core.backbones import FeatureExtractor
    from patchcore_gui.core.calibration import uncalibrated
    from patchcore_gui.core.features import EmbeddingConfig
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel

    torch.manual_seed(0)
    cfg = ModelConfig(backbone="resnet18", layers=("layer1",), embedding=EmbeddingConfig(mode="native"),
                      resize=40, crop=32)
    return PatchCoreModel(cfg, FeatureExtractor("resnet18", ["layer1"]), torch.randn(16, 64),
                          dict(uncalibrated()), device="cpu")


def make_boundary_run(folder: Path) -> Path:
    """A finished run file over ``BOUNDARY_ROWS`` with image threshold ``RUN_THRESHOLD``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, _, score in BOUNDARY_ROWS:
        p = folder / name
        if np.isnan(score):
            p.write_bytes(b"not an image")
        else:
            Image.new("RGB", (40, 40), (120, 120, 120)).save(p)
        paths.append(p)
    labels = np.array([lab for _, lab, _ in BOUNDARY_ROWS], dtype=np.int8)
    image_set = ImageSet(root=folder, paths=paths, labels=labels, mask_paths=[None] * len(BOUNDARY_ROWS),
                         defect_types=["good" if lab == 0 else "dent" for lab in labels], layout="mvtec")
    run = folder / "boundary.pcrun"
    scores = np.array([s for _, _, s in BOUNDARY_ROWS], dtype=np.float32)
    grids = np.where(np.isnan(scores)[:, None, None], np.nan, scores[:, None, None] * np.ones((1, 4, 4)))
    with RunFile.create(run, _tiny_model(), image_set, {"batch_size": 8, "device": "cpu"}) as st:
        st.add_batch(BatchResult(
            indices=np.arange(len(BOUNDARY_ROWS), dtype=np.int64), paths=[str(p) for p in paths], scores=scores,
            grids=grids.astype(np.float16), errors=["" if np.isfinite(s) else "not a recognised image format"
                                                    for s in scores], labels=labels))
        st.set_threshold(RUN_THRESHOLD, "boundary test")
        st.set_status("finished")
    return run


# --------------------------------------------------------------------------- HTML report rows


class _ImageRows(HTMLParser):
    """(file, verdict) of each row of the report's image table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self._in_table = False
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("class") == "images":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self._cells = []
        elif self._in_table and tag in ("td", "th") and self._cells is not None:
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "tr" and self._cells is not None:
            if self._cells and self._cells[0].strip().isdigit():  # a data row (header row: "#")
                # Columns: #, original, heatmap, file (+ error line), score, verdict, truth, operator.
                self.rows.append((self._cells[3].split()[0], self._cells[5].strip()))
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data + " "


def report_rows(path: Path) -> list[tuple[str, str]]:
    """(file, verdict) of each image an HTML report lists, in its order."""
    p = _ImageRows()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p.rows
