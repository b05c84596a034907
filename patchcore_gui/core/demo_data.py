"""A small embedded demo data set in the MVTec AD layout, cut from a real photograph.

The default source is scikit-image's bundled ``brick.png`` (a 512x512 greyscale CC0
photograph of a brick wall, shipped inside the scikit-image wheel), so nothing is
downloaded. ``source="gravel"`` or ``source="grass"`` cut the same kind of set from the
wheel's other two 512x512 greyscale CC0 texture photographs (see :data:`SOURCES`), giving
further labelled sets for evaluation; the demo itself uses brick.
Every tile, training or test, is a random crop of the whole photograph drawn the same
way, so the sets are exchangeable: a good test tile shares content with the training
tiles exactly as much as one training tile shares with the others. That is the premise
of the model's calibration (each training image scored without its own bank rows stands
for a new good part); format 1 cut training tiles from the top 60 % and test tiles from
the bottom 40 %, where overlapping training tiles calibrated on content they had all seen
and the default threshold rejected 15 of 20 good test tiles. Three synthetic defect
types are planted on test tiles (the generators only assume an 8-bit grey texture):

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
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .demo_defects import DEFECT_TYPES, plant_defect

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
#: 2: every tile drawn from the whole photograph (exchangeable training and test tiles).
FORMAT_VERSION = 2

#: Photographs a set can be cut from: names of 512x512 greyscale texture photos in
#: ``skimage.data``. The first is the default (the demo's brick wall).
SOURCES: tuple[str, ...] = ("brick", "gravel", "grass")

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
    # One region for every tile: training and test tiles are exchangeable (module docstring).
    train_rows = test_rows = (0, photo.shape[0])
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
            f"PatchCore GUI demo set: random tiles of scikit-image's CC0 {name} photograph "
            "(training and test tiles drawn alike from the whole photo) "
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
    if tile > photo.shape[0] or tile > photo.shape[1]:
        raise ValueError(f"tile {tile} does not fit the {photo.shape[1]} x {photo.shape[0]} photo")

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
