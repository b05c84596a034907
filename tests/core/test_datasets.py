"""Tests for core/datasets.py (listing, layout detection) and core/image_dataset.py (dataset, collate)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from patchcore_gui.core.datasets import (
    ImageSet,
    list_images,
    mvtec_test_set,
    mvtec_train_paths,
    scan_folder,
)
from patchcore_gui.core.image_dataset import ImageDataset, collate
from patchcore_gui.core.preprocess import Preprocess

PRE = Preprocess(resize=40, crop=32)


def _img(path: Path, size: tuple[int, int] = (48, 40), colour: int = 128) -> Path:
    """Write a small solid-colour image (``size`` = width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour, colour // 2, 255 - colour)).save(path)
    return path


def _mask(
    path: Path, size: tuple[int, int] = (48, 40), box: tuple[int, int, int, int] | None = None
) -> Path:
    """Write a binary mask, white inside ``box`` (left, top, right, bottom)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0]), dtype=np.uint8)
    if box is not None:
        left, top, right, bottom = box
        arr[top:bottom, left:right] = 255
    Image.fromarray(arr, mode="L").save(path)
    return path


def _symlink(link: Path, target: Path, *, directory: bool = False) -> None:
    try:
        link.symlink_to(target, target_is_directory=directory)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported here")


def _rel(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


# ------------------------------------------------------------------------ list_images


def test_list_images_recursive_and_sorted(tmp_path: Path) -> None:
    for rel in ["b.png", "a/z.jpg", "a/b/c.bmp", "a.png", "c/d/e/f.tif", "A_upper.png"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = _rel(list_images(tmp_path), tmp_path)
    expected = ["A_upper.png", "a.png", "a/b/c.bmp", "a/z.jpg", "b.png", "c/d/e/f.tif"]
    assert got == expected
    assert got == sorted(got)  # sorted by relative POSIX path string
    assert all(isinstance(p, Path) for p in list_images(tmp_path))
    assert list_images(tmp_path)[0] == tmp_path / "A_upper.png"


def test_list_images_extension_case_and_filter(tmp_path: Path) -> None:
    names = ["a.PNG", "b.JpG", "c.jpeg", "d.TIFF", "e.Bmp", "f.txt", "g.png.bak", "h", "i.gif"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    assert _rel(list_images(tmp_path), tmp_path) == ["a.PNG", "b.JpG", "c.jpeg", "d.TIFF", "e.Bmp"]


def test_list_images_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "thumb.png").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "._resource.png").write_bytes(b"x")
    (tmp_path / "sub" / "ok.png").write_bytes(b"x")
    assert _rel(list_images(tmp_path), tmp_path) == ["sub/ok.png"]


def test_list_images_skips_folder_named_like_image(tmp_path: Path) -> None:
    (tmp_path / "x.png").mkdir()
    (tmp_path / "x.png" / "inner.jpg").write_bytes(b"x")
    (tmp_path / "y.png").write_bytes(b"x")
    got = _rel(list_images(tmp_path), tmp_path)
    # The folder itself is not an image, but it is still searched.
    assert got == ["x.png/inner.jpg", "y.png"]


def test_list_images_includes_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(b"x")
    _symlink(tmp_path / "dead.png", tmp_path / "does-not-exist.png")
    assert _rel(list_images(tmp_path), tmp_path) == ["dead.png", "ok.png"]


def test_list_images_follows_symlinked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _img(outside / "o.png")
    root = tmp_path / "root"
    root.mkdir()
    _symlink(root / "linked", outside, directory=True)
    assert _rel(list_images(root), root) == ["linked/o.png"]


def test_list_images_symlink_loop_terminates(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "img.png").write_bytes(b"x")
    _symlink(root / "a" / "b" / "up", root, directory=True)  # loop back to the root
    _symlink(root / "a" / "self", root / "a", directory=True)  # loop to its own parent
    result: list[list[Path]] = []
    worker = threading.Thread(target=lambda: result.append(list_images(root)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "list_images did not terminate on a symlink loop"
    assert _rel(result[0], root) == ["a/b/img.png"]


def test_list_images_bad_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        list_images(tmp_path / "missing")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        list_images(f)


def test_list_images_empty_folder(tmp_path: Path) -> None:
    assert list_images(tmp_path) == []


def test_list_images_many_files_fast(tmp_path: Path) -> None:
    # A smaller stand-in for the 100k-file requirement, with a generous bound so a slow
    # CI machine does not flake: Path.rglob plus stat per file is several times slower.
    import time

    for d in range(20):
        sub = tmp_path / f"d{d:02d}"
        sub.mkdir()
        for f in range(500):
            (sub / f"{f:04d}.png").touch()
    start = time.perf_counter()
    got = list_images(tmp_path)
    elapsed = time.perf_counter() - start
    assert len(got) == 10_000
    assert got[0] == tmp_path / "d00" / "0000.png" and got[-1] == tmp_path / "d19" / "0499.png"
    assert elapsed < 3.0


# ----------------------------------------------------------------------- MVTec layout


def _mvtec(root: Path) -> Path:
    """An MVTec-like class folder whose mask order differs from image order.

    test/scratch has 000, 001, 002, 010; 001 has no mask, so matching masks by sorted
    position would give 001 the mask of 002, and 002 that of 010.
    """
    for i in range(3):
        _img(root / "train" / "good" / f"{i:03d}.png")
    _img(root / "test" / "good" / "000.png", colour=10)
    _img(root / "test" / "good" / "001.png", colour=20)
    boxes = {"000": (0, 0, 8, 8), "002": (20, 10, 30, 20), "010": (40, 30, 48, 40)}
    for stem in ["000", "001", "002", "010"]:
        _img(root / "test" / "scratch" / f"{stem}.png", colour=200)
        if stem in boxes:
            _mask(root / "ground_truth" / "scratch" / f"{stem}_mask.png", box=boxes[stem])
    _img(root / "test" / "hole" / "000.png", colour=220)
    _mask(root / "ground_truth" / "hole" / "000_mask.png", box=(5, 5, 15, 15))
    return root


def test_mvtec_test_set_labels_and_masks_by_name(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "bottle")
    s = mvtec_test_set(root)
    assert s.layout == "mvtec"
    assert s.root == root
    assert len(s) == 7
    rel = _rel(s.paths, root)
    assert rel == [
        "test/good/000.png",
        "test/good/001.png",
        "test/hole/000.png",
        "test/scratch/000.png",
        "test/scratch/001.png",
        "test/scratch/002.png",
        "test/scratch/010.png",
    ]
    assert s.labels.dtype == np.int8
    assert s.labels.tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert s.defect_types == ["good", "good", "hole", "scratch", "scratch", "scratch", "scratch"]
    gt = root / "ground_truth"
    assert s.mask_paths == [
        None,
        None,
        gt / "hole" / "000_mask.png",
        gt / "scratch" / "000_mask.png",
        None,  # missing mask stays missing instead of shifting the others
        gt / "scratch" / "002_mask.png",
        gt / "scratch" / "010_mask.png",
    ]
    assert s.has_labels


def test_scan_folder_detects_mvtec_class_root(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "bottle")
    s = scan_folder(root)
    assert s.layout == "mvtec"
    # Only the test images: train/ and ground_truth/ are not inspected images.
    assert all(p.relative_to(root).parts[0] == "test" for p in s.paths)
    assert len(s) == 7
    assert s.mask_paths[5] == root / "ground_truth" / "scratch" / "002_mask.png"


def test_mvtec_mask_without_mask_suffix(tmp_path: Path) -> None:
    root = tmp_path / "cls"
    _img(root / "test" / "good" / "a.png")
    _img(root / "test" / "crack" / "b.png")
    _mask(root / "ground_truth" / "crack" / "b.png")
    s = mvtec_test_set(root)
    assert _rel(s.paths, root) == ["test/crack/b.png", "test/good/a.png"]
    assert s.mask_paths == [root / "ground_truth" / "crack" / "b.png", None]


def test_mvtec_test_set_rejects_plain_folder(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    with pytest.raises(ValueError, match="MVTec"):
        mvtec_test_set(tmp_path)
    (tmp_path / "test").mkdir()  # test/ without type subfolders is not enough
    with pytest.raises(ValueError, match="test/"):
        mvtec_test_set(tmp_path)


def test_mvtec_train_paths(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "bottle")
    assert _rel(mvtec_train_paths(root), root) == [
        "train/good/000.png",
        "train/good/001.png",
        "train/good/002.png",
    ]


def test_mvtec_train_paths_falls_back_to_whole_folder(tmp_path: Path) -> None:
    _img(tmp_path / "x" / "a.png")
    _img(tmp_path / "b.png")
    assert _rel(mvtec_train_paths(tmp_path), tmp_path) == ["b.png", "x/a.png"]


def test_scan_folder_detects_test_folder(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "bottle")
    s = scan_folder(root / "test")
    assert s.layout == "mvtec"
    assert s.root == root / "test"
    assert _rel(s.paths, root / "test")[:3] == ["good/000.png", "good/001.png", "hole/000.png"]
    assert s.labels.tolist() == [0, 0, 1, 1, 1, 1, 1]
    # Masks come from the sibling ground_truth folder, still matched by name.
    assert s.mask_paths[4] is None
    assert s.mask_paths[6] == root / "ground_truth" / "scratch" / "010_mask.png"


def test_scan_folder_test_folder_without_ground_truth(tmp_path: Path) -> None:
    folder = tmp_path / "inspect"
    _img(folder / "good" / "g.png")
    _img(folder / "dent" / "d.jpg")
    _img(folder / "loose.png")  # no type folder: unknown label
    s = scan_folder(folder)
    assert s.layout == "mvtec"
    assert _rel(s.paths, folder) == ["loose.png", "dent/d.jpg", "good/g.png"]
    assert s.labels.tolist() == [-1, 1, 0]
    assert s.defect_types == ["", "dent", "good"]
    assert s.mask_paths == [None, None, None]


def test_scan_folder_only_good_is_plain_folder(tmp_path: Path) -> None:
    # "good" alone does not make a labelled test folder: nothing to compare against.
    _img(tmp_path / "good" / "a.png")
    s = scan_folder(tmp_path)
    assert s.layout == "folder"
    assert s.labels.tolist() == [-1]


def test_scan_folder_plain(tmp_path: Path) -> None:
    _img(tmp_path / "line1" / "a.png")
    _img(tmp_path / "line2" / "b.png")
    _img(tmp_path / "c.jpg")
    s = scan_folder(tmp_path)
    assert s.layout == "folder"
    assert _rel(s.paths, tmp_path) == ["c.jpg", "line1/a.png", "line2/b.png"]
    assert s.labels.dtype == np.int8
    assert s.labels.tolist() == [-1, -1, -1]
    assert s.mask_paths == [None, None, None]
    assert s.defect_types == ["", "", ""]
    assert not s.has_labels
    assert len(s) == 3


def test_scan_folder_bad_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_folder(tmp_path / "missing")


def test_image_set_checks_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="length"):
        ImageSet(tmp_path, [tmp_path / "a.png"], np.array([0, 1]), [None], ["good"], "folder")
    s = ImageSet(tmp_path, [tmp_path / "a.png"], np.array([1]), [None], ["x"], "mvtec")
    assert s.labels.dtype == np.int8 and s.has_labels


# ----------------------------------------------------------------------- ImageDataset


def test_dataset_good_image(tmp_path: Path) -> None:
    p = _img(tmp_path / "a.png", size=(60, 50))
    ds = ImageDataset([p], PRE, labels=[0])
    assert len(ds) == 1
    item = ds[0]
    assert item["error"] == ""
    assert item["image"].dtype == torch.float32
    assert item["image"].shape == (3, 32, 32)
    torch.testing.assert_close(item["image"], PRE(Image.open(p).convert("RGB")))
    assert item["index"] == 0 and item["label"] == 0
    assert item["path"] == str(p)
    assert (item["width"], item["height"]) == (60, 50)
    assert item["has_mask"] is False
    assert item["mask"].shape == (1, 32, 32) and item["mask"].dtype == torch.float32
    assert float(item["mask"].abs().sum()) == 0.0


def _broken(d: Path, kind: str) -> Path:
    """A file that cannot be decoded, of the given kind."""
    if kind == "empty":
        (d / "empty.png").write_bytes(b"")
        return d / "empty.png"
    if kind == "text":
        (d / "text.png").write_text("not an image")
        return d / "text.png"
    if kind == "folder":
        (d / "dir.png").mkdir()
        return d / "dir.png"
    return d / "missing.png"


@pytest.mark.parametrize("kind", ["empty", "text", "folder", "missing"])
def test_dataset_broken_image_is_error_row(tmp_path: Path, kind: str) -> None:
    p = _broken(tmp_path, kind)
    ds = ImageDataset(
        [p], PRE, labels=[1], mask_paths=[_mask(tmp_path / "m.png", box=(0, 0, 9, 9))]
    )
    item = ds[0]  # must not raise
    assert item["error"] != ""
    assert "\n" not in item["error"]
    assert torch.count_nonzero(item["image"]) == 0
    assert item["image"].shape == (3, 32, 32)
    assert (item["width"], item["height"]) == (0, 0)
    assert item["label"] == 1
    assert item["has_mask"] is False


def test_dataset_non_imageloaderror_is_caught(tmp_path: Path) -> None:
    class Exploding(Preprocess):
        def __call__(self, img: Image.Image) -> torch.Tensor:
            raise RuntimeError("boom\nsecond line")

    p = _img(tmp_path / "a.png")
    item = ImageDataset([p], Exploding(resize=40, crop=32))[0]
    assert item["error"] == "RuntimeError: boom"
    assert torch.count_nonzero(item["image"]) == 0
    assert (item["width"], item["height"]) == (0, 0)


def test_dataset_truncated_image(tmp_path: Path) -> None:
    good = _img(tmp_path / "good.png", size=(64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        good
    )
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ds = ImageDataset([good, cut], PRE)
    assert ds[0]["error"] == "" and ds[1]["error"] != ""
    assert ds[1]["index"] == 1


def test_dataset_mask_loaded_and_binarised(tmp_path: Path) -> None:
    # 48 x 40 -> resize shorter side to 40 (unchanged) -> centre crop 32: offsets (8, 4).
    p = _img(tmp_path / "a.png")
    m = _mask(tmp_path / "a_mask.png", box=(8, 4, 24, 20))
    item = ImageDataset([p], PRE, labels=[1], mask_paths=[m])[0]
    assert item["has_mask"] is True
    mask = item["mask"]
    assert mask.shape == (1, 32, 32) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask[0, :16, :16].min() == 1.0
    assert mask[0, 16:, :].max() == 0.0 and mask[0, :, 16:].max() == 0.0
    torch.testing.assert_close(mask, PRE.mask(Image.open(m)))


def test_dataset_bad_mask_does_not_error_image(tmp_path: Path) -> None:
    p = _img(tmp_path / "a.png")
    bad = tmp_path / "bad_mask.png"
    bad.write_text("garbage")
    ds = ImageDataset([p, p], PRE, labels=[1, 1], mask_paths=[bad, tmp_path / "missing_mask.png"])
    for item in (ds[0], ds[1]):
        assert item["error"] == ""
        assert item["has_mask"] is False
        assert float(item["mask"].sum()) == 0.0
        assert torch.count_nonzero(item["image"]) > 0


def test_dataset_labels_default_unknown_and_length_checks(tmp_path: Path) -> None:
    p = _img(tmp_path / "a.png")
    assert ImageDataset([p], PRE)[0]["label"] == -1
    assert ImageDataset([p], PRE, labels=np.array([1], dtype=np.int8))[0]["label"] == 1
    with pytest.raises(ValueError):
        ImageDataset([p], PRE, labels=[0, 1])
    with pytest.raises(ValueError):
        ImageDataset([p], PRE, mask_paths=[None, None])


def test_dataset_exif_size_is_oriented(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "o.png"
    Image.new("RGB", (50, 30), (1, 2, 3)).save(p, exif=exif)
    item = ImageDataset([p], PRE)[0]
    assert (item["width"], item["height"]) == (30, 50)


# --------------------------------------------------------------------- collate, loader


def test_collate_shapes_and_types(tmp_path: Path) -> None:
    good = _img(tmp_path / "a.png")
    m = _mask(tmp_path / "a_mask.png", box=(0, 0, 48, 40))
    ds = ImageDataset(
        [good, tmp_path / "missing.png", good], PRE, labels=[1, 0, -1], mask_paths=[m, None, None]
    )
    batch = collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (3, 1, 32, 32) and batch["mask"].dtype == torch.float32
    for key in ("index", "label", "width", "height"):
        assert batch[key].dtype == torch.int64, key
        assert batch[key].shape == (3,), key
    assert batch["index"].tolist() == [0, 1, 2]
    assert batch["label"].tolist() == [1, 0, -1]
    assert batch["width"].tolist() == [48, 0, 48]
    assert batch["height"].tolist() == [40, 0, 40]
    assert batch["has_mask"].dtype == torch.bool
    assert batch["has_mask"].tolist() == [True, False, False]
    assert batch["path"] == [str(good), str(tmp_path / "missing.png"), str(good)]
    assert batch["error"][0] == "" and batch["error"][1] != "" and batch["error"][2] == ""
    assert all(isinstance(e, str) for e in batch["error"])


def test_collate_empty_batch() -> None:
    with pytest.raises(ValueError):
        collate([])


def test_dataloader_end_to_end(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "bottle")
    (root / "test" / "scratch" / "020.png").write_bytes(b"broken")
    s = scan_folder(root)
    ds = ImageDataset(s.paths, PRE, labels=s.labels, mask_paths=s.mask_paths)
    loader = DataLoader(ds, batch_size=3, shuffle=False, num_workers=0, collate_fn=collate)
    batches = list(loader)
    assert [len(b["path"]) for b in batches] == [3, 3, 2]
    index = torch.cat([b["index"] for b in batches])
    assert index.tolist() == list(range(8))
    labels = torch.cat([b["label"] for b in batches])
    assert labels.tolist() == s.labels.tolist()
    has_mask = torch.cat([b["has_mask"] for b in batches]).tolist()
    assert has_mask == [m is not None for m in s.mask_paths]
    errors = [e for b in batches for e in b["error"]]
    assert [bool(e) for e in errors] == [False] * 7 + [True]
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (8, 3, 32, 32)
    assert torch.count_nonzero(images[-1]) == 0
    assert all(torch.count_nonzero(images[i]) > 0 for i in range(7))
    # The mask of scratch/002 (box 20..30 x 10..20 in the 48 x 40 original; crop offset
    # (8, 4)) lands at columns 12..22, rows 6..16 of the crop.
    masks = torch.cat([b["mask"] for b in batches])
    i002 = [p.name for p in s.paths].index("002.png")
    assert masks[i002, 0, 6:16, 12:22].min() == 1.0
    assert float(masks[i002].sum()) == 100.0


def test_dataset_is_picklable(tmp_path: Path) -> None:
    # DataLoader workers use "spawn", which pickles the dataset.
    import pickle

    p = _img(tmp_path / "a.png")
    ds = ImageDataset([p], PRE, labels=[0], mask_paths=[None])
    clone = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(clone[0]["image"], ds[0]["image"])
    assert os.fspath(clone.paths[0]) == str(p)
