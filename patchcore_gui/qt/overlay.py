"""Numpy side of the image pane's layers that only the window needs: outline layers, map cache.

How a map is painted (the absolute 0 .. 2 x threshold scale, the colour maps, the
region outline) is ``core/heatmap.py``'s, shared with the reports. Nothing here
draws; ``image_pane`` puts the arrays on screen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from patchcore_gui.core.heatmap import outline


def outline_rgba(mask: np.ndarray, color: tuple[int, int, int], thickness: int = 1) -> np.ndarray:
    """An RGBA image that is ``color`` on the outline of ``mask`` and transparent elsewhere."""
    edge = outline(mask, thickness)
    rgba = np.zeros((*edge.shape, 4), dtype=np.uint8)
    rgba[edge] = (*color, 255)
    return rgba


def mask_lut(color: tuple[int, int, int]) -> np.ndarray:
    """Lookup table for a 0/1 uint8 mask image: 0 transparent, 1 opaque ``color``.

    256 RGBA rows: pyqtgraph stretches a shorter table over 0..255 for uint8 images.
    """
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1:] = (*color, 255)
    return lut


def line_thickness(width: int, height: int) -> int:
    """Outline width in image pixels: about 1/250 of the image, so it reads at fit-to-view."""
    return max(1, round(max(width, height) / 250))


class MapCache:
    """A small LRU cache of full-resolution maps, keyed by (run key, image index).

    Only the images on screen (and a few neighbours visited just before) hold a
    full-size float map; the rest of the run is kept as low-resolution grids.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[int, int], build: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached value for ``key``, building (and caching) it when absent."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = build()
        self._items[key] = value
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
