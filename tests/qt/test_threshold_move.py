"""What a threshold move redraws, and what it leaves as it is.

A move must update the verdict-dependent things (the outline's colour, the operating
point, the counts) without rebuilding what does not depend on the image threshold
(the outline itself, the histogram bins, the ROC curve, the image on screen).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage

from patchcore_gui.core import heatmap, metrics
from patchcore_gui.core.preprocess import Preprocess
from patchcore_gui.qt import style
from patchcore_gui.qt.image_pane import ImageInfo, ImagePane
from patchcore_gui.qt.metrics_panel import MetricsPanel, decimate_curve
from patchcore_gui.qt.threshold_panel import ThresholdPanel


class MapsOnly:
    """The part of a model the image pane uses: a patch grid's map on the image's pixels."""

    preprocess = Preprocess(resize=80, crop=64)

    def anomaly_maps(self, grids: np.ndarray) -> np.ndarray:
        from patchcore_gui.core.maps import anomaly_maps

        return anomaly_maps(np.asarray(grids, dtype=np.float32), self.preprocess.crop)

    def map_to_original(self, amap: np.ndarray, width: int, height: int) -> np.ndarray:
        return self.preprocess.to_original(amap, width, height)


@pytest.fixture
def pane(qtbot: object, tmp_path: Path) -> tuple[ImagePane, ImageInfo]:
    """A shown pane with one 96 px image whose map has a hot blob (region above 5.0)."""
    p = ImagePane()
    qtbot.addWidget(p)  # type: ignore[attr-defined]
    p.resize(400, 400)
    p.show()
    p.set_model(MapsOnly())  # type: ignore[arg-type]
    path = tmp_path / "part.png"
    Image.fromarray(np.full((96, 96, 3), 90, dtype=np.uint8)).save(path)
    yy, xx = np.mgrid[0:8, 0:8]
    grid = (10.0 * np.exp(-((yy - 4.0) ** 2 + (xx - 4.0) ** 2) / 4.0)).astype(np.float32)
    info = ImageInfo(key=1, index=0, path=str(path), name="part.png", score=6.0, grid=grid,
                     mask_path=None, truth="good")
    p.set_thresholds(7.0, 5.0)  # image threshold above the score: OK
    p.show_image(info)
    return p, info


def outline_colors(pane: ImagePane) -> set[tuple[int, int, int, int]]:
    """RGBA colours the region layer draws (transparent excluded), read from its rendered image."""
    item = pane.region_item
    item.render()
    img = item.qimage.convertToFormat(QImage.Format.Format_RGBA8888)
    a = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * img.height())
    a = a.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 4].reshape(img.height(), img.width(), 4)
    return {tuple(int(v) for v in c) for c in a[a[..., 3] > 0].reshape(-1, 4)}


def rgba(color: object) -> tuple[int, int, int, int]:
    return color.red(), color.green(), color.blue(), 255  # type: ignore[attr-defined]


def test_verdict_flip_recolours_the_outline_without_rebuilding_it(pane: tuple[ImagePane, ImageInfo]) -> None:
    p, _ = pane
    assert p.region_mask is not None and p.region_mask.any()
    layer = p.region_item.image
    assert outline_colors(p) == {rgba(style.CONTOUR_COLOR)}  # OK image: white outline
    p.set_thresholds(5.5, 5.0)  # the image (score 6) is NG now
    assert outline_colors(p) == {rgba(style.NG_COLOR)}
    assert p.region_item.image is layer  # same outline pixels, another colour table
    edge = heatmap.outline(p.region_mask, heatmap.line_thickness(96, 96))
    assert np.array_equal(p.region_item.image.astype(bool), edge)
    p.set_thresholds(5.8, 5.0)  # still NG: nothing to redo
    assert p.region_item.image is layer
    p.set_thresholds(5.8, 7.0)  # the pixel threshold moves the outline itself
    assert p.region_item.image is not layer
    assert outline_colors(p) == {rgba(style.NG_COLOR)}


def test_showing_the_same_image_again_keeps_its_layers(pane: tuple[ImagePane, ImageInfo]) -> None:
    p, info = pane
    base, heat, region = p.base_item.image, p.heat_item.image, p.region_item.image
    p.show_image(info)  # what the table does after a filtered threshold move re-selects it
    assert p.base_item.image is base and p.heat_item.image is heat and p.region_item.image is region
    other = ImageInfo(**{**info.__dict__, "index": 1, "score": 3.0})
    p.show_image(other)  # another image: drawn afresh
    assert p.heat_item.image is not heat
    assert p.detail_label.text().startswith("score 3")


def test_colorize_matches_the_per_channel_formula() -> None:
    rng = np.random.default_rng(3)
    amap = (rng.random((37, 53)) * 12 - 1).astype(np.float32)
    amap[:3] = np.nan
    amap[5, :4] = np.inf
    amap[6, :4] = -np.inf
    lut = heatmap.lookup_table("turbo")
    levels = (0.5, 9.0)
    for m in (amap, amap.astype(np.float64), np.asfortranarray(amap), amap[::2, ::3], amap.T):
        lo, hi = levels
        with np.errstate(over="ignore", invalid="ignore"):
            idx = np.clip((np.nan_to_num(m, nan=lo) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
            got = heatmap.colorize_levels(m, levels, lut)
        assert got.shape == (*m.shape, 4) and got.dtype == np.uint8
        np.testing.assert_array_equal(got[..., :3], lut[idx])
        np.testing.assert_array_equal(got[..., 3], np.where(np.isfinite(m), 255, 0))


def test_threshold_move_keeps_the_histogram_bins(qtbot: object) -> None:
    panel = ThresholdPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    panel.set_enabled(True)
    scores = np.random.default_rng(0).gamma(4.0, 1.0, 5000)
    panel.set_scores(scores, scores[:300])
    panel.set_threshold(5.0)
    bins = (panel.batch_curve.xData, panel.batch_curve.yData, panel.cal_curve.xData, panel.cal_curve.yData)
    for t in (3.0, 6.5, 9.0):
        panel.set_threshold(t)
        assert panel.line.value() == pytest.approx(panel.scale.to_view(t))
        assert panel.slider.value() == panel.scale.to_slider(t)
    assert all(a is b for a, b in zip(bins, (panel.batch_curve.xData, panel.batch_curve.yData,
                                             panel.cal_curve.xData, panel.cal_curve.yData), strict=True))


@pytest.fixture
def labelled() -> tuple[np.ndarray, np.ndarray]:
    """Scores with ties, NaN (unreadable) and unknown labels (-1)."""
    rng = np.random.default_rng(5)
    labels = (rng.random(4000) < 0.2).astype(np.int8)
    scores = rng.gamma(4.0, 1.0, 4000) + labels * 3.0
    scores = np.round(scores, 1)  # many ties
    scores[::53] = np.nan
    labels[7::61] = -1
    return scores.astype(np.float32), labels


def test_metrics_panel_counts_equal_the_core_metrics(qtbot: object, labelled: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = labelled
    panel = MetricsPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    panel.set_data(scores, labels, 5.0)
    finite = np.unique(scores[np.isfinite(scores)])
    for t in [*finite[::7], finite[0] - 1, finite[-1], finite[-1] + 1, 4.95, -np.inf, np.inf]:
        panel.set_threshold(float(t))
        assert panel.confusion == metrics.confusion(scores, labels, float(t)), t
        assert panel.prf == metrics.precision_recall_f1(scores, labels, float(t)), t
        c = panel.confusion
        assert panel.cells["fp"].text() == f"{c['fp']:,}"


def test_operating_point_marker_follows_the_counts(qtbot: object, labelled: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = labelled
    panel = MetricsPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    panel.set_data(scores, labels, 5.0)
    for t in (3.0, 5.0, 8.0):
        panel.set_threshold(t)
        c = panel.confusion
        x, y = panel.op_point.getData()
        expected = (c["fp"] / (c["fp"] + c["tn"]), c["tp"] / (c["tp"] + c["fn"]))
        assert (float(x[0]), float(y[0])) == pytest.approx(expected)


def test_roc_curve_is_drawn_decimated_with_its_ends_and_area(qtbot: object) -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(100_000) < 0.15).astype(np.int8)
    scores = rng.gamma(4.0, 1.0, 100_000) + labels * 2.5
    panel = MetricsPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    panel.set_data(scores, labels, 5.0)
    fpr, tpr, _ = metrics.roc_curve(scores, labels)
    x, y = panel.roc_curve.getData()
    assert len(fpr) > 20_000 and len(x) <= 2 * 1000 + 2  # one per grid cell passed, plus the end
    assert (x[0], y[0], x[-1], y[-1]) == (fpr[0], tpr[0], fpr[-1], tpr[-1])
    assert np.trapezoid(y, x) == pytest.approx(np.trapezoid(tpr, fpr), abs=2e-3)
    dx, dy = decimate_curve(fpr, tpr, resolution=100)
    assert len(dx) <= 202 and (dx[-1], dy[-1]) == (fpr[-1], tpr[-1])


def test_an_unreadable_image_is_not_read_again_when_reselected(
    qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patchcore_gui.qt import image_pane

    reads: list[str] = []
    real = image_pane.load_any_image  # the pane's reader (paths and URIs)
    monkeypatch.setattr(image_pane, "load_any_image", lambda path: reads.append(path) or real(path))
    p = ImagePane()
    qtbot.addWidget(p)  # type: ignore[attr-defined]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    info = ImageInfo(key=1, index=3, path=str(bad), name="broken.png", score=float("nan"), grid=None,
                     mask_path=None, truth="good", error="not a recognised image format")
    p.show_image(info)
    p.show_image(info)  # re-selected after a threshold move changed the table's rows
    assert reads == [str(bad)]
    assert "cannot be shown" in p.placeholder.text() and p.badge.text() == "error"
    p.show_image(ImageInfo(**{**info.__dict__, "index": 4}))  # another row: read
    assert len(reads) == 2
