"""A report's heatmap of an image is the window's overlay of it, pixel for pixel.

The window's image pane is grabbed offscreen (what the operator sees: image, heatmap
at the chosen opacity and colour map, region outline) and each image pixel is read at
the centre of the screen square it is drawn in. The report's rendering of the same
image, from the run file's grid, at the same thresholds, colour map and opacity must
give the same colours, up to the rounding of Qt's opacity blend. At the window's
default colour map and opacity (what reports use) that is the reports' own thumbnail
path; at another colour map and opacity, ``core.heatmap.paint``, which it paints with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from patchcore_gui.core import heatmap
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.qt.main_window import MainWindow
from patchcore_gui.reports import render

#: Qt blends the heatmap layer's opacity in 8-bit steps; numpy rounds the exact product.
CHANNEL_TOLERANCE = 3


def grabbed_image_pixels(window: MainWindow) -> np.ndarray:
    """(H, W, 3) uint8: the image pane's screen colour at the centre of each image pixel."""
    pane = window.image_pane
    view = pane.view
    shot = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    buf = np.frombuffer(shot.constBits(), np.uint8, shot.bytesPerLine() * shot.height())
    screen = buf.reshape(shot.height(), shot.bytesPerLine())[:, : shot.width() * 3].reshape(
        shot.height(), shot.width(), 3)
    h, w = pane.base_item.image.shape[:2]
    to_screen = pane.base_item.sceneTransform() * view.viewportTransform()
    out = np.zeros((h, w, 3), np.uint8)
    for r in range(h):
        for c in range(w):
            p = to_screen.map(QPointF(c + 0.5, r + 0.5))
            out[r, c] = screen[int(p.y()), int(p.x())]
    # Each image pixel must cover several screen pixels, or centres would blur into neighbours.
    corner = to_screen.map(QPointF(1.0, 1.0)) - to_screen.map(QPointF(0.0, 0.0))
    assert corner.x() >= 3 and corner.y() >= 3, "the image is not shown large enough to read it back"
    return out


def report_rendering(image_path: str, grid: np.ndarray, model: object, pixel_threshold: float,
                     colormap: str, opacity: float) -> np.ndarray:
    """The report's picture of one NG image at full size: (H, W, 3) uint8."""
    size = max(Image.open(image_path).size)  # a "thumbnail" as large as the image: no downscale
    if (colormap, opacity) == (heatmap.DEFAULT_COLORMAP, heatmap.DEFAULT_OPACITY):
        _, overlay = render.thumbnail_pair(image_path, size, grid=grid, model=model,
                                           pixel_threshold=pixel_threshold, ng=True)
        assert overlay is not None
        return np.asarray(overlay.convert("RGB"))
    thumb, (w, h) = render.load_thumbnail(image_path, size)
    amap = render.map_for_size(model.preprocess, render.batch_maps(model, [grid])[0],  # type: ignore[attr-defined]
                               w, h, thumb.width, thumb.height)
    return heatmap.paint(np.asarray(thumb.convert("RGB")), amap, pixel_threshold, opacity=opacity,
                         colormap=colormap, outline_rgb=heatmap.NG_OUTLINE_RGB)


@pytest.mark.parametrize(("colormap", "opacity_percent"), [("inferno", 55), ("turbo", 80)])
def test_report_heatmap_equals_the_window_overlay(
    window: MainWindow, qtbot: object, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable,
    colormap: str, opacity_percent: int,
) -> None:
    w = window
    w.show()
    qtbot.waitExposed(w)  # type: ignore[attr-defined]
    assert w.open_model(qt_model_path) and w.open_folder(qt_data["mvtec"])
    assert not run_to_end(w)
    st, model = w.store, w.model
    assert st is not None and model is not None and w.session.path is not None
    index = next(i for i, p in enumerate(st.paths) if p.endswith("square/001.png"))
    with RunFile.open(w.session.path, readonly=True) as run:  # the grid the report reads
        grid = dict(run.iter_grids(np.array([index])))[index]
    amap = model.map_to_original(model.anomaly_maps(np.asarray(grid, np.float32)[None])[0], 96, 96)
    # A pixel threshold inside the defect's map values: a region outline is drawn too.
    pixel_t = float(np.nanpercentile(amap, 90))
    w.set_pixel_threshold(pixel_t)
    w.set_threshold(float(st.scores[index]) * 0.5)  # the image is NG: the outline is red
    w.results.select_image(index)
    pane = w.image_pane
    pane.gt_check.setChecked(False)  # the ground-truth outline is the window's alone
    pane.set_colormap(colormap)
    pane.set_opacity(opacity_percent)
    pane.fit()
    qtbot.wait(50)  # type: ignore[attr-defined]

    shown = grabbed_image_pixels(w)
    opacity = opacity_percent / 100.0
    report = report_rendering(st.paths[index], grid, model, pixel_t, colormap, opacity)
    assert shown.shape == report.shape == (96, 96, 3)
    region = heatmap.region_outline(amap, pixel_t, heatmap.line_thickness(96, 96))
    assert region.sum() > 20  # the comparison covers the outline, not only the heatmap
    diff = np.abs(shown.astype(np.int16) - report.astype(np.int16))
    assert diff.max() <= CHANNEL_TOLERANCE, (
        f"{int((diff.max(axis=2) > CHANNEL_TOLERANCE).sum())} of {96 * 96} pixels differ by up to {diff.max()}")
    # The comparison can fail: another colour map, or half the opacity, is far off.
    other = heatmap.paint(np.asarray(Image.open(st.paths[index]).convert("RGB")), amap, pixel_t,
                          opacity=opacity, colormap="viridis", outline_rgb=heatmap.NG_OUTLINE_RGB)
    assert np.abs(shown.astype(np.int16) - other.astype(np.int16)).max() > 40
    faint = heatmap.paint(np.asarray(Image.open(st.paths[index]).convert("RGB")), amap, pixel_t,
                          opacity=opacity / 2, colormap=colormap, outline_rgb=heatmap.NG_OUTLINE_RGB)
    assert np.abs(shown.astype(np.int16) - faint.astype(np.int16)).max() > 20
