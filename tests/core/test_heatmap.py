"""core/heatmap.py: the one heatmap scale, colour map, opacity and region outline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchcore_gui.core import colormaps, heatmap


def test_scale_is_zero_to_twice_the_pixel_threshold() -> None:
    assert heatmap.SCALE_FACTOR == 2.0
    assert heatmap.heat_levels(3.0) == (0.0, 6.0)
    assert heatmap.heat_levels(math.nan, 4.0) == (0.0, 8.0)  # uncalibrated: image threshold anchors
    assert heatmap.heat_levels(-1.0, 0.5) == (0.0, 1.0)
    assert heatmap.heat_levels(math.nan) == (0.0, 2.0)
    assert heatmap.region_threshold(3.0) == 3.0
    assert heatmap.region_threshold(math.nan, 4.0) == 4.0


@pytest.mark.parametrize("name", ["inferno", "turbo", "viridis", "plasma"])
def test_tables_are_pyqtgraphs(name: str) -> None:
    """The window showed pyqtgraph's tables: ours must be the same bytes."""
    pg = pytest.importorskip("pyqtgraph")
    want = np.asarray(pg.colormap.get(name).getLookupTable(nPts=256, alpha=False), dtype=np.uint8)[:, :3]
    np.testing.assert_array_equal(heatmap.lookup_table(name), want)


def test_inferno_is_the_default_and_its_ends() -> None:
    assert heatmap.DEFAULT_COLORMAP == "inferno" and colormaps.NAMES[0] == "inferno"
    lut = heatmap.lookup_table()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (0, 0, 4) and tuple(lut[255]) == (252, 255, 164)  # inferno's black .. pale yellow
    np.testing.assert_array_equal(heatmap.lookup_table("no such map"), lut)
    lut[0] = 9  # a copy: the table itself stays
    assert tuple(heatmap.lookup_table()[0]) == (0, 0, 4)


def test_colorize_maps_the_absolute_scale() -> None:
    amap = np.array([[0.0, 1.0, 2.0, 4.0, 9.0, np.nan]], dtype=np.float32)
    rgba = heatmap.colorize(amap, 2.0, alpha=0.5)
    lut = heatmap.lookup_table()
    # scale 0 .. 4: 0 -> 0, 1 -> 63, 2 (the threshold) -> 127, 4 and above -> 255
    np.testing.assert_array_equal(rgba[0, :5, :3], lut[[0, 63, 127, 255, 255]])
    np.testing.assert_array_equal(rgba[0, :, 3], [128, 128, 128, 128, 128, 0])
    full = heatmap.colorize(amap, 2.0)
    assert list(full[0, :, 3]) == [255] * 5 + [0]


def test_outline_is_the_inner_edge() -> None:
    m = np.zeros((7, 7), bool)
    m[1:6, 1:6] = True
    edge = heatmap.outline(m)
    assert edge.sum() == 16 and not edge[2:5, 2:5].any() and edge[1, 1:6].all()
    assert heatmap.outline(m, 2).sum() == 24
    assert not heatmap.outline(np.zeros((4, 4), bool)).any()
    amap = np.where(m, 5.0, 0.0)
    amap[0, 0] = np.nan
    np.testing.assert_array_equal(heatmap.region_outline(amap, 1.0), edge)
    assert heatmap.line_thickness(100, 100) == 1 and heatmap.line_thickness(1000, 600) == 4


def test_paint_blends_at_the_opacity_and_draws_the_outline_on_top() -> None:
    base = np.full((20, 20, 3), 100, np.uint8)
    amap = np.zeros((20, 20), np.float32)
    amap[5:15, 5:15] = 1.5  # scale 0 .. 2: index int(1.5 x 127.5) = 191
    amap[:, 0] = np.nan
    out = heatmap.paint(base, amap, 1.0, opacity=0.5)
    lut = heatmap.lookup_table()
    np.testing.assert_array_equal(out[10, 10], np.floor(100 * 0.5 + lut[191] * 0.5 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(out[0, 10], np.floor(100 * 0.5 + lut[0] * 0.5 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(out[3, 0], [100, 100, 100])  # outside the crop: untouched
    assert tuple(out[5, 10]) == heatmap.OUTLINE_RGB and tuple(out[14, 14]) == heatmap.OUTLINE_RGB
    assert tuple(out[6, 10]) != heatmap.OUTLINE_RGB
    bare = heatmap.paint(base, amap, 1.0, opacity=0.5, draw_outline=False)
    assert tuple(bare[5, 10]) == tuple(out[10, 10])
    np.testing.assert_array_equal(heatmap.paint(base, amap, 1.0, opacity=0.0, draw_outline=False), base)
