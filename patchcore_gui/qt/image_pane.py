"""The image under review at full resolution, with heatmap, defect region and ground truth.

pyqtgraph draws four layers on the image's own pixel grid: the RGB image, the
heatmap (``core.heatmap``: absolute colour scale, colour map, opacity), the outline of
the region above the pixel threshold (``core.heatmap`` too, so a report's heatmap is
the one shown here), and the ground-truth mask outline. A thin strip under the
image holds the overlay controls; a header names the image and its verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PIL import Image
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from patchcore_gui.core import heatmap
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.result_table import ERROR, NG, VERDICT_WORDS
from patchcore_gui.core.uri_listing import load_any_image
from patchcore_gui.core.verdict import verdict_code
from patchcore_gui.io.images import ImageLoadError, load_image

from . import overlay, style
from .overlay_controls import OverlayControls

# No antialiasing: software-rasterised antialiased plots cost several times more to
# paint, and painting competes with a run for the GIL.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

EMPTY_HINT = (
    "Open a model (Ctrl+O) and a folder of images (Ctrl+Shift+O),\n"
    "or drop them on this window, then press Run (Ctrl+R).\n"
    "A saved run opens with File > Open run (Ctrl+Alt+O).\n\n"
    "Review: ↑ / ↓ previous / next image  ·  Space heatmap on / off  ·  Ctrl+F search\n"
    "O / N confirm the image OK / NG (again: clear) and go to the next one"
)


@dataclass(frozen=True)
class ImageInfo:
    """What the pane shows about one image besides its pixels."""

    key: int  # run key: invalidates cached maps when a new run starts
    index: int
    path: str
    name: str
    score: float
    grid: np.ndarray | None
    mask_path: str | None
    truth: str
    error: str = ""


class ImagePane(QWidget):
    """Shows one image; emits ``step_requested`` for up/down and toggles the overlay on space."""

    #: +1 next row, -1 previous row.
    step_requested = Signal(int)
    opacity_changed = Signal(int)
    colormap_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._model: PatchCoreModel | None = None
        self._info: ImageInfo | None = None
        self._image_threshold = math.nan
        self._pixel_threshold = math.nan
        self._review_from = math.nan
        self._fallback_anchor = math.nan
        self._lut = heatmap.lookup_table()
        self._maps = overlay.MapCache(8)
        self._images = overlay.MapCache(4)
        #: Full-resolution map of the image on screen (NaN outside the crop), for probes.
        self.current_map: np.ndarray | None = None
        #: Last rendered heatmap RGBA (H, W, 4) uint8, for probes.
        self.heat_rgba: np.ndarray | None = None
        self.region_mask: np.ndarray | None = None
        self.gt_mask: np.ndarray | None = None
        #: What the region layer shows: (map, pixel threshold, colour); redrawn on a change only.
        self._region_drawn: tuple[np.ndarray, float, int] | None = None
        self._build()
        self.clear()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        head = QHBoxLayout()
        head.setContentsMargins(8, 6, 8, 6)
        head.setSpacing(10)
        self.name_label = QLabel("")
        self.name_label.setObjectName("cardTitle")
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.badge = QLabel("")
        self.badge.setObjectName("verdictBadge")
        self.detail_label = QLabel("")
        self.detail_label.setObjectName("muted")
        head.addWidget(self.badge)
        head.addWidget(self.name_label, 1)
        head.addWidget(self.detail_label)
        outer.addLayout(head)

        self.stack = QStackedLayout()
        self.placeholder = QLabel(EMPTY_HINT)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setObjectName("muted")
        self.placeholder.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(style.BASE_BG)
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.base_item = pg.ImageItem()
        self.heat_item = pg.ImageItem()
        self.region_item = pg.ImageItem()
        self.gt_item = pg.ImageItem()
        for z, item in enumerate((self.base_item, self.heat_item, self.region_item, self.gt_item)):
            item.setZValue(z)
            self.viewbox.addItem(item)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.view)
        holder = QWidget()
        holder.setLayout(self.stack)
        outer.addWidget(holder, 1)
        outer.addWidget(self._build_strip())

        for key, step in ((Qt.Key.Key_Up, -1), (Qt.Key.Key_Down, 1)):
            sc = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda s=step: self.step_requested.emit(s))

    def _build_strip(self) -> QWidget:
        """The overlay controls under the image, wired to the layers."""
        strip = OverlayControls()
        # By name on the pane too: the window stores and restores their settings.
        self.heat_check, self.opacity_slider, self.cmap_combo = strip.heat_check, strip.opacity_slider, strip.cmap_combo
        self.region_check, self.gt_check, self.fit_button = strip.region_check, strip.gt_check, strip.fit_button
        self.colorbar, self.scale_label = strip.colorbar, strip.scale_label
        self.heat_check.toggled.connect(self.heat_item.setVisible)
        self.region_check.toggled.connect(self.region_item.setVisible)
        self.gt_check.toggled.connect(self.gt_item.setVisible)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.cmap_combo.currentTextChanged.connect(self.set_colormap)
        self.fit_button.clicked.connect(self.fit)
        self._on_opacity(self.opacity_slider.value())
        return strip

    # ------------------------------------------------------------------ settings
    def set_opacity(self, percent: int) -> None:
        self.opacity_slider.setValue(int(percent))

    def _on_opacity(self, percent: int) -> None:
        self.heat_item.setOpacity(percent / 100.0)
        self.opacity_changed.emit(int(percent))

    def set_colormap(self, name: str) -> None:
        """Colour the heatmap with ``name`` (one of ``heatmap.COLORMAPS``)."""
        if name not in heatmap.COLORMAPS:
            return
        if self.cmap_combo.currentText() != name:
            self.cmap_combo.setCurrentText(name)  # re-enters through the signal
            return
        self._lut = heatmap.lookup_table(name)
        self._render_heat()
        self.colormap_changed.emit(name)

    def toggle_overlay(self) -> None:
        """Space: show or hide the heatmap."""
        self.heat_check.toggle()

    @property
    def levels(self) -> tuple[float, float]:
        """The heatmap's absolute colour scale."""
        return heatmap.heat_levels(self._pixel_threshold, self._fallback_anchor)

    # ------------------------------------------------------------------ content
    def set_model(self, model: PatchCoreModel | None) -> None:
        """A new model: new maps for every image."""
        self._model = model
        self._maps.clear()
        self.clear()

    def set_thresholds(self, image_threshold: float, pixel_threshold: float, review_from: float | None = None) -> None:
        """Image threshold (verdict, contour colour) and pixel threshold (region, colour scale);
        ``review_from``: the review band's start for the header's verdict (None: unchanged).

        Without a pixel threshold (uncalibrated model) the image threshold anchors the scale.
        """
        if review_from is not None:
            self._review_from = review_from
        pixel_changed = pixel_threshold != self._pixel_threshold or (
            not math.isfinite(pixel_threshold) and image_threshold != self._fallback_anchor
        )
        self._image_threshold = image_threshold
        self._pixel_threshold = pixel_threshold
        self._fallback_anchor = image_threshold
        if pixel_changed:
            self._render_heat()
        self._render_region()
        self._update_header()

    def clear(self, message: str = "") -> None:
        """Show the placeholder (with ``message`` if given)."""
        self._info = None
        self.current_map = self.heat_rgba = self.region_mask = self.gt_mask = None
        self._region_drawn = None
        for item in (self.base_item, self.heat_item, self.region_item, self.gt_item):
            item.clear()
        self.placeholder.setText(message or EMPTY_HINT)
        self.colorbar.setVisible(False)
        self.scale_label.setVisible(False)
        self.stack.setCurrentIndex(0)
        self.name_label.setText("")
        self.detail_label.setText("")
        self.badge.setText("")
        self.badge.setStyleSheet("")

    def show_image(self, info: ImageInfo) -> None:
        """Display one image with its overlays."""
        if self._showing(info):
            # The same image again (the table re-selects it after a threshold move
            # changed its rows): pixels, maps and overlays stand, and an unreadable file
            # is not read again; only the header may change.
            self._info = info
            self._update_header()
            return
        # Stepping through images of one size keeps the zoom (inspect the same spot on
        # each part); a different size, or nothing shown before, fits the view.
        old_shape = None if self.base_item.image is None else self.base_item.image.shape[:2]
        self._info = info
        try:
            rgb = self._images.get((info.key, info.index), lambda: np.asarray(load_any_image(info.path)))
        except ImageLoadError as exc:
            self.clear(f"{info.name}\n\ncannot be shown: {exc}")
            self._info = info
            self._update_header()
            return
        h, w = rgb.shape[:2]
        self.base_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.current_map = None
        if info.grid is not None and self._model is not None:
            model = self._model
            grid = info.grid
            self.current_map = self._maps.get(
                (info.key, info.index),
                lambda: model.map_to_original(model.anomaly_maps(grid[None])[0], w, h),
            )
        self.gt_mask = self._load_mask(info.mask_path, w, h)
        self.stack.setCurrentIndex(1)
        self.colorbar.setVisible(self.current_map is not None)
        self.scale_label.setVisible(self.current_map is not None)
        self._render_heat()
        self._render_region()
        if self.gt_mask is not None:
            self.gt_item.setImage(overlay.outline_rgba(self.gt_mask, heatmap.TRUTH_RGB, heatmap.line_thickness(w, h)))
        else:
            self.gt_item.clear()
        if old_shape != (h, w):
            self.fit()
        self._update_header()

    def _showing(self, info: ImageInfo) -> bool:
        """True when ``info``'s image (or why it cannot be shown) is on screen already."""
        old = self._info  # set while an image, or its load error, is shown
        if old is None:
            return False
        same_score = old.score == info.score or (math.isnan(old.score) and math.isnan(info.score))
        # (run key, index) identifies an image's map (see the map cache); the rest guards
        # against a folder reopened under the same key.
        return (
            same_score
            and (old.key, old.index, old.path, old.mask_path, old.error, old.truth, old.name)
            == (info.key, info.index, info.path, info.mask_path, info.error, info.truth, info.name)
            and (old.grid is None) == (info.grid is None)
        )

    def fit(self) -> None:
        """Zoom so the whole image is visible."""
        if self.base_item.image is not None:
            self.viewbox.autoRange(padding=0.02)

    # ------------------------------------------------------------------ drawing
    @staticmethod
    def _load_mask(path: str | None, w: int, h: int) -> np.ndarray | None:
        if not path:
            return None
        try:
            m = load_image(path).convert("L")
        except ImageLoadError:
            return None
        if m.size != (w, h):
            m = m.resize((w, h), Image.Resampling.NEAREST)
        return np.asarray(m) > 127

    def _render_heat(self) -> None:
        if self.current_map is None:
            self.heat_rgba = None
            self.heat_item.clear()
        else:
            self.heat_rgba = heatmap.colorize_levels(self.current_map, self.levels, self._lut)
            self.heat_item.setImage(self.heat_rgba, autoLevels=False)
        lo, hi = self.levels
        self.colorbar.set_scale(self._lut, (lo, hi), (lo + hi) / 2)

    def _render_region(self) -> None:
        """Outline of the map above the pixel threshold, NG-red when the image is NG.

        Called on every image-threshold move, which can only change the colour. The
        outline (an erosion of a full-resolution mask, ~10 ms at 1024 x 1024) is redone
        when the map or the pixel threshold changes; the layer is a 0/1 image coloured
        through a lookup table, so a verdict flip swaps the table, not the pixels.
        """
        amap = self.current_map
        t = heatmap.region_threshold(self._pixel_threshold, self._fallback_anchor)
        if amap is None:
            self.region_mask = None
            self._region_drawn = None
            self.region_item.clear()
            return
        color = style.NG_COLOR if self._verdict() == NG else style.CONTOUR_COLOR
        drawn = self._region_drawn
        if drawn is not None and drawn[0] is amap and drawn[1] == t:
            if drawn[2] != color.rgba():
                self.region_item.setLookupTable(overlay.mask_lut(_rgb(color)))
                self._region_drawn = (amap, t, color.rgba())
            return
        self.region_mask = heatmap.region_mask(amap, t)
        h, w = amap.shape
        edge = heatmap.outline(self.region_mask, heatmap.line_thickness(w, h))
        lut = overlay.mask_lut(_rgb(color))
        self.region_item.setImage(edge.view(np.uint8), autoLevels=False, levels=None, lut=lut)
        self._region_drawn = (amap, t, color.rgba())

    def _verdict(self) -> int:
        info = self._info
        if info is None or info.error or math.isnan(info.score):
            return ERROR
        return verdict_code(info.score, self._image_threshold, self._review_from)  # OK, REVIEW or NG

    def _update_header(self) -> None:
        info = self._info
        if info is None:
            return
        code = self._verdict()
        color = style.verdict_color(code)
        sheet = f"background: {color.name()}; color: #101214;"
        # Only on change: setStyleSheet re-polishes the widget (costly under a run).
        if self.badge.styleSheet() != sheet:
            self.badge.setStyleSheet(sheet)
        _set_text(self.badge, VERDICT_WORDS[code])
        _set_text(self.name_label, info.name)
        self.name_label.setToolTip(info.path)
        parts = []
        if info.error:
            parts.append(info.error)
        elif not math.isnan(info.score):
            parts.append(f"score {info.score:.4g}")
            if math.isfinite(self._image_threshold) and self._image_threshold > 0:
                parts.append(f"{info.score / self._image_threshold:.2f} × threshold")
        if info.truth:
            parts.append(f"truth: {info.truth}")
        _set_text(self.detail_label, "   ·   ".join(parts))


def _set_text(label: QLabel, text: str) -> None:
    """setText only when the text changes (a change relays out the header)."""
    if label.text() != text:
        label.setText(text)


def _rgb(c: QColor) -> tuple[int, int, int]:
    return c.red(), c.green(), c.blue()
