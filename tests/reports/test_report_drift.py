"""The reports' "Score drift" section (issue 13 point 4): shifted or normal, with the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured

from patchcore_gui.core.datasets import scan_folder
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.reports.report import write_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run files of a normal and a darkened batch (model with 30 calibration scores), and of the
    normal batch scored by a model with only 3 calibration scores."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    root = tmp_path_factory.mktemp("drift_report")
    rng = np.random.default_rng(4)
    model = train_model([_save(root / "train" / f"{i}.png", textured(rng)) for i in range(8)],
                        TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5),
                        device="cpu", batch_size=4)
    few = model.calibration_scores[:3]
    cal, _ = model.predict([textured(rng) for _ in range(30)])
    model.metadata["calibration"] = {**model.metadata.get("calibration", {}), "scores": [float(s) for s in cal]}
    model.save(root / "m.patchcore")
    for i in range(24):
        img = textured(rng)
        _save(root / "normal" / f"{i:02d}.png", img)
        _save(root / "dark" / f"{i:02d}.png", (img * 0.5).astype(np.uint8))
    out = {}
    for name in ("normal", "dark"):
        out[name] = root / f"{name}.pcrun"
        predict_into_run(model, scan_folder(root / name), out[name], batch_size=8)
    model.metadata["calibration"]["scores"] = [float(s) for s in few]
    model.save(root / "old.patchcore")
    out["old"] = root / "old.pcrun"
    predict_into_run(model, scan_folder(root / "normal"), out["old"], batch_size=8)
    return out


def _save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def test_html_says_shifted_with_the_figure_or_normal(runs: dict[str, Path], tmp_path: Path) -> None:
    write_report(runs["dark"], tmp_path / "dark.html")
    html = (tmp_path / "dark.html").read_text(encoding="utf-8")
    assert "<h2>Score drift</h2><p class=note>Shifted: median score " in html
    assert "x the training median" in html and "check lighting, focus, camera, product" in html
    write_report(runs["normal"], tmp_path / "normal.html")
    html = (tmp_path / "normal.html").read_text(encoding="utf-8")
    assert "<h2>Score drift</h2><p>Normal: median score " in html and "check lighting" not in html
    # The model facts say what the centre crop leaves out.
    assert "centre crop 64 of 72: the outer 5.56 % at each edge" in html


def test_a_model_with_few_calibration_scores_says_so(runs: dict[str, Path], tmp_path: Path) -> None:
    write_report(runs["old"], tmp_path / "old.html")
    html = (tmp_path / "old.html").read_text(encoding="utf-8")
    assert "<h2>Score drift</h2><p>Not enough calibration scores for a drift check (3 in the model" in html


def test_pdf_has_the_section(runs: dict[str, Path], tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    write_report(runs["dark"], tmp_path / "dark.pdf")
    doc = pdfium.PdfDocument(str(tmp_path / "dark.pdf"))
    try:
        text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()
    flat = " ".join(text.split())
    assert "Score drift" in flat and "Shifted: median score" in flat
