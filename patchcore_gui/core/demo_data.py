"""A small embedded demo data set in the MVTec AD layout, cut from a real photograph.

The default source is scikit-image's bundled ``brick.png`` (a 512x512 greyscale CC0
photograph of a brick wall, shipped inside the scikit-image wheel), so nothing is
downloaded. ``source="gravel"`` or ``source="grass"`` cut the same kind of set from the
wheel's other two 512x512 greyscale CC0 texture photographs (see :data:`SOURCES`), giving
further labelled sets for evaluation; the demo itself uses brick.
Training tiles come from the top ~60 % of the photo's rows and test tiles from the
bottom ~40 %, so no test pixel was ever seen in training. Three synthetic defect types
are planted on test tiles (the generators only assume an 8-bit grey texture, not brick):

* ``scratch`` - a thin, slightly curved bright or dark line at a random angle;
* ``stain``   - an irregular blotch of darker or lighter intensity with a soft edge that
  keeps the texture underneath;
* ``hole``    - a dark irregular ellipse that replaces the texture.

Every ground-truth mask is exact: a pixel is 255 in the mask if and only if the defect
was blended into it (its blending weight is above zero), and every pixel outside the
mask is byte-identical to the clean crop. Images are written as 8-bit greyscale
(mode "L") PNGs, because the photograph is grey and RGB would triple the size for no
information; the image loader turns them into RGB.

``build_demo_dataset`` is deterministic for a given seed and writes atomically: the set
is built in a hidden sibling folder and renamed into place, so a crash or a concurrent
caller never leaves a half-written set at ``root``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "DEFECT_TYPES",
    "MARKER",
    "SOURCES",
    "build_demo_dataset",
    "demo_root",
    "load_source_photo",
]

#: Name of the marker file written last into a finished demo set.
MARKER = "demo.json"

#: Bumped whenever the generator's output changes, so stale caches get rebuilt.
FORMAT_VERSION = 1

#: Defect types planted on test tiles, in the order defect counts are dealt out.
DEFECT_TYPES: tuple[str, ...] = ("scratch", "stain", "hole")

#: Photographs a set can be cut from: names of 512x512 greyscale texture photos in
#: ``skimage.data``. The first is the default (the demo's brick wall).
SOURCES: tuple[str, ...] = ("brick", "gravel", "grass")

#: Fraction of the photo's rows (from the top) that training tiles are cut from.
TRAIN_FRACTION = 0.6

#: Smallest tile the defect generators are designed for (blob margins, scratch length).
MIN_TILE = 32


def demo_root() -> Path:
    """Default location of the demo data set (not created here).

    ``$PATCHCORE_GUI_CACHE/demo/brick`` when that variable is set, else
    ``$XDG_CACHE_HOME/patchcore_gui/demo/brick``, else
    ``~/.cache/patchcore_gui/demo/brick``.
    """
    cache = os.environ.get("PATCHCORE_GUI_CACHE")
    if cache:
        base = Path(cache).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        # The XDG spec says relative values are invalid and must be ignored.
        if xdg and os.path.isabs(xdg):
            base = Path(xdg) / "patchcore_gui"
        else:
            base = Path.home() / ".cache" / "patchcore_gui"
    return base / "demo" / "brick"


def _check_source(source: str) -> str:
    """``source`` if it names one of :data:`SOURCES`, else a ValueError."""
    if source not in SOURCES:
        raise ValueError(f"unknown demo source {source!r}; expected one of {SOURCES}")
    return source


def load_source_photo(source: str = "brick") -> np.ndarray:
    """A source photograph (default brick) as a 2-D uint8 array, from scikit-image's wheel.

    ``source`` is one of :data:`SOURCES`; each is a 512x512 greyscale photograph.
    """
    _check_source(source)
    # Imported lazily: scikit-image is only needed when a demo set is actually built.
    from skimage import data

    photo = np.asarray(getattr(data, source)())
    if photo.ndim == 3:  # defensive: a future release might ship it as RGB
        photo = photo[..., :3].mean(axis=2)
    return np.ascontiguousarray(photo, dtype=np.uint8)


# --------------------------------------------------------------------------- defects


def _grid(tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a ``tile`` x ``tile`` image, as float arrays."""
    yy, xx = np.mgrid[0:tile, 0:tile].astype(np.float64)
    return yy, xx


def _blob_alpha(
    tile: int, rng: np.random.Generator, area_range: tuple[float, float], edge_px: float
) -> np.ndarray:
    """Blending weight in [0, 1] of an irregular ellipse-like blob; 0 outside it.

    The outline is an ellipse whose radius is modulated by a few low harmonics, scaled
    so the enclosed area is a random fraction ``area_range`` of the tile. Inside the
    outline the weight ramps from 0 to 1 over ``edge_px`` pixels, giving a soft edge.
    """
    # Outline r(theta) for a unit "radius": low harmonics make it irregular, not jagged.
    n_harm = 4
    amps = rng.uniform(0.0, 0.12, n_harm) / np.arange(1, n_harm + 1) ** 0.5
    phases = rng.uniform(0.0, 2 * np.pi, n_harm)
    ks = np.arange(2, 2 + n_harm)

    def shape(theta: np.ndarray) -> np.ndarray:
        return 1.0 + np.sum(amps[:, None] * np.cos(ks[:, None] * theta + phases[:, None]), axis=0)

    aspect = rng.uniform(1.0, 1.8)
    ax, ay = np.sqrt(aspect), 1.0 / np.sqrt(aspect)  # semi-axes with ax * ay == 1
    rot = rng.uniform(0.0, np.pi)

    # Area of the polar curve r = s * shape(theta) stretched by (ax, ay) is
    # s^2 * ax * ay * pi * mean(shape^2); solve for s so the blob hits the target area.
    probe = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    target = rng.uniform(*area_range) * tile * tile
    scale = np.sqrt(target / (np.pi * np.mean(shape(probe) ** 2)))
    extent = scale * float(np.max(shape(probe))) * max(ax, ay)

    # Keep the whole blob (plus a small margin) inside the tile where it fits.
    lo, hi = extent + 2.0, tile - 1.0 - extent - 2.0
    cy = rng.uniform(lo, hi) if hi > lo else (tile - 1) / 2.0
    cx = rng.uniform(lo, hi) if hi > lo else (tile - 1) / 2.0

    yy, xx = _grid(tile)
    dy, dx = yy - cy, xx - cx
    # Rotate into the blob's frame, then undo the anisotropy.
    u = (dx * np.cos(rot) + dy * np.sin(rot)) / ax
    v = (-dx * np.sin(rot) + dy * np.cos(rot)) / ay
    rho = np.hypot(u, v)
    boundary = scale * shape(np.arctan2(v, u).ravel()).reshape(rho.shape)
    # Approximate distance inside the outline, measured in the blob's normalised frame;
    # since ax * ay == 1 it is within a factor sqrt(aspect) of true pixels all round.
    depth = boundary - rho
    return np.clip(depth / edge_px, 0.0, 1.0)


def _scratch_alpha(tile: int, rng: np.random.Generator) -> np.ndarray:
    """Blending weight in [0, 1] of a thin, gently curved line; 0 away from it."""
    length = rng.uniform(0.35, 0.7) * tile
    angle = rng.uniform(0.0, np.pi)
    half_width = rng.uniform(0.8, 1.6)  # 1.6-3.2 px wide: thin but visible at 128 px
    bend = rng.uniform(-0.12, 0.12) * length  # sideways offset of the curve's middle

    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    # Choose the centre so both ends (and the bend) stay 4 px inside the tile.
    span = np.abs(direction) * length / 2 + np.abs(normal) * abs(bend)
    margin = 4.0 + half_width
    lo = margin + span
    hi = tile - 1.0 - margin - span
    centre = np.where(hi > lo, rng.uniform(0.0, 1.0, 2) * (hi - lo) + lo, (tile - 1) / 2.0)

    # Sample the quadratic curve densely (every ~0.5 px) and take the distance from each
    # pixel to the nearest sample: simple, vectorised, and accurate to a fraction of a px.
    t = np.linspace(-0.5, 0.5, max(8, int(length * 2)))
    pts = (
        centre[None, :]
        + t[:, None] * length * direction[None, :]
        + (1.0 - 4.0 * t[:, None] ** 2) * bend * normal[None, :]
    )  # (n, 2) as (x, y)
    yy, xx = _grid(tile)
    d2 = np.full(yy.shape, np.inf)
    for x0, y0 in pts:  # loop over ~100-200 points; each step is one vectorised pass
        np.minimum(d2, (xx - x0) ** 2 + (yy - y0) ** 2, out=d2)
    dist = np.sqrt(d2)
    # Anti-aliased edge: full weight within half_width, fading to 0 over the next pixel.
    return np.clip(half_width + 0.5 - dist, 0.0, 1.0)


def _plant_scratch(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a scratch into ``img`` (float); return (new image, alpha)."""
    alpha = _scratch_alpha(img.shape[0], rng)
    # Real scratches on brick expose lighter material more often than they darken it.
    colour = rng.uniform(225.0, 250.0) if rng.uniform() < 0.7 else rng.uniform(15.0, 35.0)
    strength = rng.uniform(0.8, 1.0)
    a = alpha * strength
    return img * (1 - a) + colour * a, alpha


def _plant_stain(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a soft-edged darker or lighter blotch into ``img``; return (image, alpha)."""
    alpha = _blob_alpha(img.shape[0], rng, (0.06, 0.18), edge_px=rng.uniform(3.0, 6.0))
    if rng.uniform() < 0.65:
        # Damp / oil stain: multiplicative darkening keeps the texture visible through it.
        factor = rng.uniform(0.45, 0.62)
        out = img * (1 - alpha * (1 - factor))
    else:
        # Paint / efflorescence: pull towards a light grey, still keeping some texture.
        light = rng.uniform(215.0, 240.0)
        out = img + alpha * rng.uniform(0.45, 0.6) * (light - img)
    return out, alpha


def _plant_hole(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a dark irregular hole into ``img``; return (image, alpha)."""
    alpha = _blob_alpha(img.shape[0], rng, (0.05, 0.12), edge_px=rng.uniform(1.5, 2.5))
    # A hole's floor is dark with faint residual texture and a little sensor noise.
    floor = rng.uniform(18.0, 32.0) + 0.15 * (img - img.mean())
    floor = floor + rng.normal(0.0, 3.0, img.shape)
    return img * (1 - alpha) + floor * alpha, alpha


_PLANTERS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": _plant_scratch,
    "stain": _plant_stain,
    "hole": _plant_hole,
}


def plant_defect(
    tile_img: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Plant one defect of type ``kind`` into a clean uint8 tile.

    Returns ``(image, mask)``: the uint8 defective image and a uint8 mask that is 255
    exactly where the defect was blended in and 0 elsewhere. Pixels outside the mask
    are left byte-identical to ``tile_img``.
    """
    if kind not in _PLANTERS:
        raise ValueError(f"unknown defect type {kind!r}; expected one of {DEFECT_TYPES}")
    clean = tile_img.astype(np.float64)
    out, alpha = _PLANTERS[kind](clean, rng)
    inside = alpha > 0
    # Copy only the blended pixels so the outside stays bit-exact (no float round trip).
    result = tile_img.copy()
    result[inside] = np.clip(np.rint(out[inside]), 0, 255).astype(np.uint8)
    mask = np.where(inside, 255, 0).astype(np.uint8)
    return result, mask


# --------------------------------------------------------------------------- building


def _params(
    seed: int,
    tile: int,
    n_train: int,
    n_test_good: int,
    n_test_defect: int,
    source: str = "brick",
) -> dict[str, Any]:
    """The parameters recorded in the marker; a cached set is reused only if they match.

    The source is recorded as ``"skimage.data.<name>"``, so brick sets built before the
    ``source`` option existed still match.
    """
    return {
        "format_version": FORMAT_VERSION,
        "source": f"skimage.data.{_check_source(source)}",
        "seed": int(seed),
        "tile": int(tile),
        "n_train": int(n_train),
        "n_test_good": int(n_test_good),
        "n_test_defect": int(n_test_defect),
        "defect_types": list(DEFECT_TYPES),
        "image_mode": "L",
    }


def _is_complete(root: Path, params: dict[str, Any]) -> bool:
    """True if ``root`` holds a finished set built with exactly ``params``."""
    try:
        marker = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("params") != params:
        return False
    files = marker.get("files")
    if not isinstance(files, list):
        return False
    # The marker is written last and the folder renamed atomically, so this only catches
    # files deleted by hand afterwards; one stat per file (~110) is cheap.
    return all(isinstance(f, str) and (root / f).is_file() for f in files)


def _save_png(arr: np.ndarray, path: Path) -> None:
    """Write a 2-D uint8 array as an 8-bit greyscale PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # PIL writes no timestamp chunk, so identical arrays give identical bytes.
    Image.fromarray(arr, mode="L").save(path, format="PNG")


def _crop(
    photo: np.ndarray, rows: tuple[int, int], tile: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """A random ``tile`` crop lying entirely within ``rows``, randomly mirrored."""
    y = int(rng.integers(rows[0], rows[1] - tile + 1))
    x = int(rng.integers(0, photo.shape[1] - tile + 1))
    flip = bool(rng.integers(0, 2))
    crop = photo[y : y + tile, x : x + tile]
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), {"y": y, "x": x, "flip": flip}


def _write_set(
    dest: Path, photo: np.ndarray, params: dict[str, Any], rng: np.random.Generator
) -> None:
    """Write every image, mask and finally the marker into the empty folder ``dest``."""
    tile = params["tile"]
    split = round(photo.shape[0] * TRAIN_FRACTION)
    train_rows, test_rows = (0, split), (split, photo.shape[0])
    files: list[str] = []
    crops: dict[str, dict[str, Any]] = {}

    def emit(rel: str, arr: np.ndarray) -> None:
        _save_png(arr, dest / rel)
        files.append(rel)

    for i in range(params["n_train"]):
        crop, where = _crop(photo, train_rows, tile, rng)
        rel = f"train/good/{i:03d}.png"
        emit(rel, crop)
        crops[rel] = where
    for i in range(params["n_test_good"]):
        crop, where = _crop(photo, test_rows, tile, rng)
        rel = f"test/good/{i:03d}.png"
        emit(rel, crop)
        crops[rel] = where

    # Deal defects round-robin so the types stay balanced (30 -> 10 of each).
    n_def = params["n_test_defect"]
    counts = {
        k: n_def // len(DEFECT_TYPES) + (j < n_def % len(DEFECT_TYPES))
        for j, k in enumerate(DEFECT_TYPES)
    }
    for kind in DEFECT_TYPES:
        for i in range(counts[kind]):
            crop, where = _crop(photo, test_rows, tile, rng)
            img, mask = plant_defect(crop, kind, rng)
            rel = f"test/{kind}/{i:03d}.png"
            emit(rel, img)
            emit(f"ground_truth/{kind}/{i:03d}_mask.png", mask)
            crops[rel] = where

    name = str(params["source"]).rsplit(".", 1)[-1]  # "skimage.data.brick" -> "brick"
    marker = {
        "params": params,
        "description": (
            f"PatchCore GUI demo set: tiles of scikit-image's CC0 {name} photograph "
            f"(train rows 0-{split - 1}, test rows {split}-{photo.shape[0] - 1}) "
            "with synthetic scratch, stain and hole defects."
        ),
        "files": files,
        "crops": crops,
    }
    # Written last: its presence is what marks the set as complete.
    (dest / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True), encoding="utf-8")


def build_demo_dataset(
    root: str | Path,
    *,
    seed: int = 0,
    tile: int = 128,
    n_train: int = 60,
    n_test_good: int = 20,
    n_test_defect: int = 30,
    source: str = "brick",
) -> Path:
    """Build (or reuse) a demo set in the MVTec AD layout at ``root``.

    Tiles are cut from the photograph named by ``source`` (one of :data:`SOURCES`;
    default brick, the demo's set); any other name raises ``ValueError``.

    Layout: ``train/good/NNN.png``, ``test/good/NNN.png``, ``test/<type>/NNN.png`` and
    ``ground_truth/<type>/NNN_mask.png`` for the types in :data:`DEFECT_TYPES`
    (defect counts dealt round-robin; a type with none gets no folder). Images are
    8-bit greyscale PNGs of ``tile`` x ``tile`` pixels; masks are 0/255 8-bit PNGs.

    If ``root`` already holds a complete set built with the same parameters it is
    returned untouched. A stale demo set (different parameters, or files missing) is
    replaced; an empty folder is filled; any other existing folder raises
    ``FileExistsError`` rather than being deleted.

    Returns ``root`` as a Path.
    """
    root = Path(root)
    if tile < MIN_TILE:
        raise ValueError(f"tile must be at least {MIN_TILE} pixels, got {tile}")
    if n_train < 1 or n_test_good < 0 or n_test_defect < 0:
        raise ValueError("need n_train >= 1 and non-negative test counts")
    params = _params(seed, tile, n_train, n_test_good, n_test_defect, source)
    if _is_complete(root, params):
        return root

    photo = load_source_photo(source)
    test_rows = photo.shape[0] - round(photo.shape[0] * TRAIN_FRACTION)
    if tile > test_rows or tile > photo.shape[1]:
        raise ValueError(f"tile {tile} does not fit the photo's test region ({test_rows} rows)")

    if root.exists() and not root.is_dir():
        raise FileExistsError(f"not a folder: {root}")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        # Never delete a folder we did not make.
        raise FileExistsError(f"{root} exists, is not empty and is not a demo data set")

    root.parent.mkdir(parents=True, exist_ok=True)
    # A sibling on the same file system, so the final rename is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        _write_set(tmp, photo, params, np.random.default_rng(seed))
        _install(tmp, root, params)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _install(tmp: Path, root: Path, params: dict[str, Any]) -> None:
    """Atomically move the finished set ``tmp`` to ``root``, replacing a stale one."""
    old: Path | None = None
    if root.is_dir():
        if _is_complete(root, params):  # another process finished first
            return
        # rename() cannot replace a non-empty folder, so move the stale one aside first;
        # readers then see either the old set, no set, or the new set - never a mix.
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / "set")
    try:
        os.replace(tmp, root)
    except OSError:
        # Lost a race with a concurrent builder: fine if what it installed is complete.
        if not _is_complete(root, params):
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
