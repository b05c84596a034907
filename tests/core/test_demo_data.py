"""Tests for patchcore_gui.core.demo_data: the embedded brick demo set (and its gravel and
grass variants) in MVTec layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patchcore_gui.core import demo_data
from patchcore_gui.core.demo_data import (
    DEFECT_TYPES,
    MARKER,
    SOURCES,
    build_demo_dataset,
    demo_root,
    load_source_photo,
    plant_defect,
)

TILE = 128
#: Small counts for the tests that build several sets, to stay fast.
SMALL = {"n_train": 3, "n_test_good": 2, "n_test_defect": 3}


@pytest.fixture(scope="module")
def default_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default-sized demo set, built once for the read-only tests."""
    return build_demo_dataset(tmp_path_factory.mktemp("demo") / "brick")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The source photograph the tiles were cut from."""
    return load_source_photo()


def _read(path: Path) -> np.ndarray:
    """A PNG as a numpy array (mode kept)."""
    with Image.open(path) as im:
        return np.asarray(im)


def _pngs(folder: Path) -> list[str]:
    """Sorted PNG file names directly in ``folder``."""
    return sorted(p.name for p in folder.glob("*.png"))


def _all_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative POSIX path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _clean_crop(photo: np.ndarray, where: dict[str, object]) -> np.ndarray:
    """Re-cut the clean tile recorded in the marker's ``crops`` entry."""
    y, x = int(where["y"]), int(where["x"])  # type: ignore[call-overload]
    crop = photo[y : y + TILE, x : x + TILE]
    return crop[:, ::-1] if where["flip"] else crop


def test_source_photo_is_the_bundled_brick() -> None:
    photo = load_source_photo()
    assert photo.shape == (512, 512)
    assert photo.dtype == np.uint8
    # A real photograph, not a blank or synthetic placeholder.
    assert photo.std() > 10


def test_layout_and_counts(default_set: Path) -> None:
    root = default_set
    assert len(_pngs(root / "train" / "good")) == 60
    assert len(_pngs(root / "test" / "good")) == 20
    assert sorted(p.name for p in (root / "test").iterdir()) == sorted(["good", *DEFECT_TYPES])
    for kind in DEFECT_TYPES:
        assert len(_pngs(root / "test" / kind)) == 10
        assert len(_pngs(root / "ground_truth" / kind)) == 10
    assert (root / MARKER).is_file()
    for path in [*root.glob("train/good/*.png"), *root.glob("test/*/*.png")]:
        with Image.open(path) as im:
            assert im.size == (TILE, TILE)
            assert im.mode == "L"


def test_good_images_have_no_masks(default_set: Path) -> None:
    gt = default_set / "ground_truth"
    assert sorted(p.name for p in gt.iterdir()) == sorted(DEFECT_TYPES)
    assert not (gt / "good").exists()
    assert not list(default_set.glob("train/**/*_mask.png"))


def test_every_defect_has_an_exact_sized_binary_mask(default_set: Path) -> None:
    for kind in DEFECT_TYPES:
        images = _pngs(default_set / "test" / kind)
        masks = _pngs(default_set / "ground_truth" / kind)
        # One mask per image, matched by MVTec's "<stem>_mask.png" name, and no extras.
        assert masks == [n.replace(".png", "_mask.png") for n in images]
        for name in images:
            img = _read(default_set / "test" / kind / name)
            with Image.open(
                default_set / "ground_truth" / kind / name.replace(".png", "_mask.png")
            ) as m:
                assert m.mode == "L"
                mask = np.asarray(m)
            assert mask.shape == img.shape
            assert set(np.unique(mask)) <= {0, 255}
            frac = (mask > 0).mean()
            assert 0.0 < frac < 1.0
            if kind == "scratch":
                assert 0.004 < frac < 0.05  # thin line, clearly not a blob
            else:
                assert 0.04 < frac < 0.22  # blobs: about 5-20 % of the tile


def test_training_and_test_tiles_are_drawn_alike_from_the_whole_photo(default_set: Path) -> None:
    """Exchangeable sets (the calibration's premise): both come from the whole photo.

    Format 1 cut training tiles from the top 60 % and test tiles from the bottom 40 %;
    the out-of-bank calibration of overlapping training tiles then rejected 15 of 20
    good test tiles.
    """
    marker = json.loads((default_set / MARKER).read_text())
    crops = marker["crops"]
    assert len(crops) == 60 + 20 + 30
    train_y = [w["y"] for r, w in crops.items() if r.startswith("train/")]
    test_y = [w["y"] for r, w in crops.items() if r.startswith("test/")]
    for ys in (train_y, test_y):
        assert min(ys) < 512 * 0.3 and max(ys) + TILE > 512 * 0.7  # top and bottom of the photo alike
        assert all(0 <= y <= 512 - TILE for y in ys)
    # Both flips occur in a set this size, so the augmentation is real.
    assert {w["flip"] for w in crops.values()} == {True, False}


def test_images_match_photo_and_masks_are_exact(default_set: Path, photo: np.ndarray) -> None:
    crops = json.loads((default_set / MARKER).read_text())["crops"]
    for rel, where in crops.items():
        img = _read(default_set / rel).astype(int)
        clean = _clean_crop(photo, where).astype(int)
        kind = rel.split("/")[1]
        if kind == "good":
            np.testing.assert_array_equal(img, clean, err_msg=rel)
            continue
        mask = _read(
            default_set / "ground_truth" / rel.removeprefix("test/").replace(".png", "_mask.png")
        )
        inside = mask > 0
        # Outside the mask the defect image is byte-identical to the clean crop...
        np.testing.assert_array_equal(img[~inside], clean[~inside], err_msg=rel)
        # ...and inside, the defect clearly changed the pixels (not a faint ghost).
        assert np.abs(img[inside] - clean[inside]).mean() > 20, rel
        # The mask is tight: nearly all of it was actually changed.
        assert (img != clean)[inside].mean() > 0.8, rel


def test_defect_region_statistics_differ_from_clean_tile(default_set: Path) -> None:
    """Without the clean reference: the masked region stands out from its own tile."""
    good_std = np.mean([_read(p).std() for p in (default_set / "test" / "good").glob("*.png")])
    for kind in DEFECT_TYPES:
        for path in sorted((default_set / "test" / kind).glob("*.png")):
            img = _read(path).astype(float)
            inside = (
                _read(default_set / "ground_truth" / kind / path.name.replace(".png", "_mask.png"))
                > 0
            )
            if kind == "hole":
                # A hole is dark and nearly textureless compared with brick.
                assert img[inside].mean() < 60, path
                # (its soft edge blends into the brick, so a little above the mean good std)
                assert img[inside].std() < 1.25 * good_std, path
            else:
                assert abs(img[inside].mean() - img[~inside].mean()) > 15, path


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = _all_files(build_demo_dataset(tmp_path / "a", seed=7, **SMALL))
    b = _all_files(build_demo_dataset(tmp_path / "b", seed=7, **SMALL))
    assert len(a) == 3 + 2 + 3 + 3 + 1
    assert a == b


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    a = _all_files(build_demo_dataset(tmp_path / "a", seed=1, **SMALL))
    b = _all_files(build_demo_dataset(tmp_path / "b", seed=2, **SMALL))
    assert a.keys() == b.keys()
    differing = [k for k in a if k.endswith(".png") and a[k] != b[k]]
    # Random crops of a 512 px photo: every tile should differ, not just one.
    assert len(differing) == len(a) - 1


def test_second_call_is_a_noop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_demo_dataset(tmp_path / "set", **SMALL)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    inode = root.stat().st_ino

    def no_rebuild(*_args: object, **_kwargs: object) -> np.ndarray:
        raise AssertionError("a complete cached set must not be rebuilt")

    # The cache check must come before any work, not just before the final rename.
    monkeypatch.setattr(demo_data, "load_source_photo", no_rebuild)
    assert build_demo_dataset(tmp_path / "set", **SMALL) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert root.stat().st_ino == inode


def test_changed_parameters_or_missing_files_rebuild(tmp_path: Path) -> None:
    root = build_demo_dataset(tmp_path / "set", seed=0, **SMALL)
    first = _all_files(root)
    build_demo_dataset(root, seed=1, **SMALL)
    assert json.loads((root / MARKER).read_text())["params"]["seed"] == 1
    assert _all_files(root) != first
    # A hand-deleted file makes the cache incomplete, so it is rebuilt, not trusted.
    (root / "test" / "good" / "000.png").unlink()
    build_demo_dataset(root, seed=1, **SMALL)
    assert (root / "test" / "good" / "000.png").is_file()
    # No temp or stale-copy folders are left next to the set.
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_demo_dataset(root, **SMALL)
    assert (root / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_empty_existing_folder_is_filled(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    build_demo_dataset(root, **SMALL)
    assert (root / MARKER).is_file()


def test_failed_build_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = demo_data._save_png
    calls = {"n": 0}

    def flaky_save(arr: np.ndarray, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        real_save(arr, path)

    monkeypatch.setattr(demo_data, "_save_png", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        build_demo_dataset(tmp_path / "set", **SMALL)
    # Atomic: neither a half-written set at root nor a temp sibling survives.
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_demo_dataset(tmp_path / "a", tile=8)
    with pytest.raises(ValueError):
        build_demo_dataset(tmp_path / "b", tile=600)  # larger than the 512 px photo
    with pytest.raises(ValueError):
        build_demo_dataset(tmp_path / "c", n_train=0)
    assert list(tmp_path.iterdir()) == []


def test_plant_defect_rejects_unknown_type() -> None:
    tile = np.full((64, 64), 128, np.uint8)
    with pytest.raises(ValueError, match="unknown defect type"):
        plant_defect(tile, "crack", np.random.default_rng(0))


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_plant_defect_on_flat_tile_changes_exactly_the_mask(kind: str) -> None:
    tile = np.full((64, 64), 128, np.uint8)
    img, mask = plant_defect(tile, kind, np.random.default_rng(3))
    changed = img != tile
    assert changed.any()
    # Every changed pixel is in the mask; edge pixels with a tiny blend weight may
    # round back to 128, so only a small share of the mask may be unchanged.
    assert not (changed & (mask == 0)).any()
    assert (changed & (mask > 0)).sum() >= 0.8 * (mask > 0).sum()


def test_demo_root_honours_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHCORE_GUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo_root() == tmp_path / "cache" / "demo" / "brick"
    monkeypatch.delenv("PATCHCORE_GUI_CACHE")
    assert demo_root() == tmp_path / "xdg" / "patchcore_gui" / "demo" / "brick"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_root() == tmp_path / "home" / ".cache" / "patchcore_gui" / "demo" / "brick"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert demo_root() == tmp_path / "home" / ".cache" / "patchcore_gui" / "demo" / "brick"
    # Only a path is computed; nothing is created.
    assert not any(tmp_path.iterdir())
    assert not os.path.exists(tmp_path / "home")


# --------------------------------------------------------------------------- sources


def test_sources_are_distinct_real_photographs() -> None:
    assert SOURCES == ("brick", "gravel", "grass")
    photos = {name: load_source_photo(name) for name in SOURCES}
    np.testing.assert_array_equal(photos["brick"], load_source_photo())
    for name, photo in photos.items():
        assert photo.shape == (512, 512), name
        assert photo.dtype == np.uint8, name
        assert photo.std() > 10, name
    assert not np.array_equal(photos["gravel"], photos["brick"])
    assert not np.array_equal(photos["grass"], photos["brick"])
    assert not np.array_equal(photos["gravel"], photos["grass"])


def test_default_brick_params_are_unchanged(tmp_path: Path) -> None:
    """The default marker params are fixed within a format (format 2: tiles drawn alike)."""
    root = build_demo_dataset(tmp_path / "set", **SMALL)
    params = json.loads((root / MARKER).read_text())["params"]
    assert params == {
        "format_version": 2,
        "source": "skimage.data.brick",
        "seed": 0,
        "tile": TILE,
        "n_train": 3,
        "n_test_good": 2,
        "n_test_defect": 3,
        "defect_types": ["scratch", "stain", "hole"],
        "image_mode": "L",
    }
    # Naming brick explicitly is the same set, byte for byte.
    named = build_demo_dataset(tmp_path / "named", source="brick", **SMALL)
    assert _all_files(named) == _all_files(root)


@pytest.mark.parametrize("source", ["gravel", "grass"])
def test_other_source_builds_an_exact_mvtec_set(tmp_path: Path, source: str) -> None:
    root = build_demo_dataset(tmp_path / source, source=source, **SMALL)
    marker = json.loads((root / MARKER).read_text())
    assert marker["params"]["source"] == f"skimage.data.{source}"
    assert source in marker["description"]
    assert len(_pngs(root / "train" / "good")) == 3
    assert len(_pngs(root / "test" / "good")) == 2
    for kind in DEFECT_TYPES:
        assert _pngs(root / "ground_truth" / kind) == [
            n.replace(".png", "_mask.png") for n in _pngs(root / "test" / kind)
        ]
    # Tiles are cut from that photograph (not brick) and the masks are exact on it too.
    photo = load_source_photo(source)
    for rel, where in marker["crops"].items():
        img = _read(root / rel).astype(int)
        clean = _clean_crop(photo, where).astype(int)
        if rel.split("/")[1] == "good":
            np.testing.assert_array_equal(img, clean, err_msg=rel)
            continue
        mask = root / "ground_truth" / rel.removeprefix("test/").replace(".png", "_mask.png")
        inside = _read(mask) > 0
        np.testing.assert_array_equal(img[~inside], clean[~inside], err_msg=rel)
        assert np.abs(img[inside] - clean[inside]).mean() > 20, rel
    # Same seed and counts as a brick set, but every image differs.
    brick = _all_files(build_demo_dataset(tmp_path / "brick", **SMALL))
    other = _all_files(root)
    assert brick.keys() == other.keys()
    assert all(brick[k] != other[k] for k in brick if k.startswith(("train/", "test/")))


def test_changing_source_rebuilds_a_cached_set(tmp_path: Path) -> None:
    root = build_demo_dataset(tmp_path / "set", **SMALL)
    first = _all_files(root)
    build_demo_dataset(root, source="gravel", **SMALL)
    assert json.loads((root / MARKER).read_text())["params"]["source"] == "skimage.data.gravel"
    assert _all_files(root) != first
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_unknown_source_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo source 'camera'"):
        build_demo_dataset(tmp_path / "set", source="camera", **SMALL)
    with pytest.raises(ValueError, match="unknown demo source"):
        load_source_photo("Brick")
    assert list(tmp_path.iterdir()) == []
