"""Finding images on disk and reading MVTec-style ground truth.

``scan_folder`` decides what a folder is (an MVTec class, an MVTec-like ``test``
folder, or just a folder of images) so the user never has to say;
``list_images_with_truth`` lists a folder as ``list_images`` does and grafts on the
ground truth its layout gives. Feeding the images to torch is ``core/image_dataset.py``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchcore_gui.io.images import IMAGE_EXTENSIONS

__all__ = [
    "ImageSet",
    "list_images",
    "list_images_with_truth",
    "mvtec_test_set",
    "mvtec_train_paths",
    "scan_folder",
    "unlabelled",
]

#: Name of the defect-free class in MVTec-style layouts.
GOOD = "good"


def _check_folder(root: Path) -> None:
    """Raise FileNotFoundError / NotADirectoryError with a readable message."""
    if not root.exists():
        raise FileNotFoundError(f"folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")


def _is_image_entry(entry: os.DirEntry[str]) -> bool:
    """True for a non-folder entry with an image extension that is a file or broken link."""
    if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
        return False
    try:
        if entry.is_dir():
            return False
        # A symlink that is neither file nor folder is broken: it is listed so it shows
        # up as an error row rather than silently vanishing. Sockets, FIFOs and devices
        # are skipped.
        return entry.is_file() or entry.is_symlink()
    except OSError:
        # Following the link failed (a symlink loop raises ELOOP): still a broken link,
        # so it is listed too. is_symlink() does not follow, so it cannot loop.
        try:
            return entry.is_symlink()
        except OSError:
            return False


def _scan_rel(root: Path) -> list[str]:
    """Relative POSIX paths of the images under ``root``, sorted.

    os.scandir rather than Path.rglob: DirEntry answers is_dir/is_file from the
    directory listing itself (no stat per file), which is what makes 100k files fast.
    """
    _check_folder(root)
    st = os.stat(root)
    # Folders already entered, by (device, inode): a symlink back to an ancestor (or to
    # a folder seen through another link) would otherwise be walked forever / twice.
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    out: list[str] = []
    # Depth-first in sorted order, so which alias of a doubly-linked folder is listed
    # does not depend on the file system's listing order.
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        dirpath, prefix = stack.pop()
        try:
            entries = _read_folder(dirpath)
        except OSError:
            # An unreadable subfolder (permissions, vanished mid-scan) must not hide
            # every other image; the root itself was checked above.
            continue
        subdirs: list[tuple[str, str]] = []
        for name, key in entries:
            if key is None:
                out.append(prefix + name)
                continue
            if key in seen:
                continue
            seen.add(key)
            subdirs.append((os.path.join(dirpath, name), prefix + name + "/"))
        stack.extend(reversed(subdirs))
    out.sort()
    return out


def _classify(it: Iterable[os.DirEntry[str]], dirpath: str) -> list[tuple[str, tuple[int, int] | None]]:
    """(name, (device, inode)) for subfolders and (name, None) for images, sorted by name.

    Evaluated while the folder is still open: entries of a folder opened by descriptor
    need that descriptor for their (lazy) stat calls.
    """
    found: list[tuple[str, tuple[int, int] | None]] = []
    for entry in sorted(it, key=lambda e: e.name):
        name = entry.name
        if name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError:
            is_dir = False
        if is_dir:
            try:
                est = _entry_stat(entry, dirpath)
            except OSError:
                continue
            found.append((name, (est.st_dev, est.st_ino)))
        elif _is_image_entry(entry):
            found.append((name, None))
    return found


def _entry_stat(entry: os.DirEntry[str], dirpath: str) -> os.stat_result:
    """``entry.stat()``, falling back to a descriptor walk when the path is too long."""
    try:
        return entry.stat()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG or os.stat not in os.supports_dir_fd:
            raise
    fd = _open_folder_by_parts(dirpath)
    try:
        return os.stat(entry.name, dir_fd=fd)
    finally:
        os.close(fd)


def _read_folder(dirpath: str) -> list[tuple[str, tuple[int, int] | None]]:
    """The classified entries of one folder, even when its path exceeds PATH_MAX.

    A folder nested deeper than the system's path-length limit cannot be listed by
    path (ENAMETOOLONG); it is opened one component at a time instead, so its images
    are still listed and become error rows with the reason rather than vanishing.
    """
    try:
        with os.scandir(dirpath) as it:
            return _classify(it, dirpath)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG or os.open not in os.supports_dir_fd:
            raise
    fd = _open_folder_by_parts(dirpath)
    try:
        with os.scandir(fd) as it:
            return _classify(it, dirpath)
    finally:
        os.close(fd)


def _open_folder_by_parts(dirpath: str) -> int:
    """A descriptor for ``dirpath`` opened component by component (each below NAME_MAX)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    path = Path(dirpath)
    fd = os.open(path.anchor or ".", flags)
    try:
        for part in path.parts[1:] if path.anchor else path.parts:
            nfd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def list_images(root: str | Path) -> list[Path]:
    """All image files under ``root``, recursively, sorted by relative POSIX path.

    Extensions come from ``IMAGE_EXTENSIONS`` (any case). Hidden files and folders
    (name starting with ".") are skipped, as are folders whose name looks like an
    image. Symlinked folders are followed, but each real folder is entered once, so
    link loops terminate. Broken symlinks with an image extension are included (they
    become error rows downstream).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    return [root / rel for rel in _scan_rel(root)]


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on an ndarray is ambiguous
class ImageSet:
    """A list of images with whatever ground truth the folder layout provides.

    ``paths`` (and ``mask_paths``) is a list of ``Path``, or for large runs read back from
    a run file a ``core.path_list.PathList``: the same ``Sequence[Path]`` over strings,
    which makes a ``Path`` only for the items asked for.
    """

    root: Path
    paths: Sequence[Path]
    #: int8 per image: 0 good, 1 defect, -1 unknown.
    labels: np.ndarray
    mask_paths: Sequence[Path | None]
    #: "good", a defect type name, or "" when unknown.
    defect_types: list[str]
    #: "folder" or "mvtec".
    layout: str

    def __post_init__(self) -> None:
        # Normalise once here so every consumer can rely on the dtype and lengths.
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int8).reshape(-1))
        n = len(self.paths)
        if not (len(self.labels) == len(self.mask_paths) == len(self.defect_types) == n):
            raise ValueError(
                f"ImageSet fields differ in length: {n} paths, {len(self.labels)} labels, "
                f"{len(self.mask_paths)} mask paths, {len(self.defect_types)} defect types"
            )

    @property
    def has_labels(self) -> bool:
        """True when at least one image has a known good/defect label."""
        return bool(np.any(self.labels >= 0))

    @property
    def mask_count(self) -> int:
        """Number of images with a mask file (a run file's list is counted without a Path each)."""
        masks = getattr(self.mask_paths, "strings", self.mask_paths)
        return len(masks) - (masks.count(None) if isinstance(masks, list) else sum(m is None for m in masks))

    def __len__(self) -> int:
        return len(self.paths)


def _subfolders(folder: Path) -> list[Path]:
    """Non-hidden subfolders of ``folder`` (symlinks followed), sorted by name."""
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if not e.name.startswith(".") and _entry_is_dir(e)]
    except OSError:
        return []
    return [folder / n for n in sorted(names)]


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_mvtec_class_root(root: Path) -> bool:
    test = root / "test"
    return test.is_dir() and bool(_subfolders(test))


def _is_test_folder(folder: Path) -> bool:
    names = [p.name.lower() for p in _subfolders(folder)]
    return GOOD in names and len(names) >= 2


def _mask_index(gt_type_dir: Path) -> dict[str, Path]:
    """Map lower-case relative path without extension -> mask file, for one defect type."""
    if not gt_type_dir.is_dir():
        return {}
    index: dict[str, Path] = {}
    for rel in _scan_rel(gt_type_dir):
        index.setdefault(os.path.splitext(rel)[0].lower(), gt_type_dir / rel)
    return index


def _labelled_set(test_dir: Path, gt_dir: Path | None, root: Path) -> ImageSet:
    """Images of ``test_dir/<type>/...`` labelled by type, masks matched by file name."""
    paths: list[Path] = []
    labels: list[int] = []
    masks: list[Path | None] = []
    types: list[str] = []
    # Images lying directly in the test folder have no type folder: unknown label.
    with os.scandir(test_dir) as it:
        loose = sorted(e.name for e in it if not e.name.startswith(".") and _is_image_entry(e))
    for name in loose:
        paths.append(test_dir / name)
        labels.append(-1)
        masks.append(None)
        types.append("")
    for type_dir in _subfolders(test_dir):
        is_good = type_dir.name.lower() == GOOD
        dtype = GOOD if is_good else type_dir.name
        index = _mask_index(gt_dir / type_dir.name) if gt_dir is not None else {}
        for rel in _scan_rel(type_dir):
            stem = os.path.splitext(rel)[0].lower()
            # MVTec names masks "<stem>_mask.png"; some exports keep the bare stem.
            # Matching by name, never by position: one missing mask would otherwise
            # shift every later mask onto the wrong image.
            mask = index.get(stem + "_mask") or index.get(stem)
            paths.append(type_dir / rel)
            labels.append(0 if is_good else 1)
            masks.append(mask)
            types.append(dtype)
    return ImageSet(
        root=root,
        paths=paths,
        labels=np.asarray(labels, dtype=np.int8),
        mask_paths=masks,
        defect_types=types,
        layout="mvtec",
    )


def mvtec_test_set(root: str | Path) -> ImageSet:
    """The labelled test images of an MVTec class folder (``root/test/<type>/*``).

    Label 0 for the ``good`` type and 1 for every other; masks are
    ``root/ground_truth/<type>/<stem>_mask.png`` matched by file name (None if absent).

    Raises:
        FileNotFoundError / NotADirectoryError: ``root`` is not a folder.
        ValueError: ``root`` has no ``test`` folder with defect-type subfolders.
    """
    root = Path(root)
    _check_folder(root)
    if not _is_mvtec_class_root(root):
        raise ValueError(
            f"not an MVTec class folder: {root} has no test/ folder with "
            "defect-type subfolders (e.g. test/good, test/scratch)"
        )
    gt = root / "ground_truth"
    return _labelled_set(root / "test", gt if gt.is_dir() else None, root)


def mvtec_train_paths(root: str | Path) -> list[Path]:
    """Training (defect-free) images: ``root/train/good`` if it exists, else all of ``root``."""
    root = Path(root)
    _check_folder(root)
    train_good = root / "train" / GOOD
    if train_good.is_dir():
        return list_images(train_good)
    return list_images(root)


def scan_folder(root: str | Path) -> ImageSet:
    """Images under ``root`` with ground truth detected from the folder layout.

    * An MVTec class folder (``test/<type>/``, optionally ``train/`` and
      ``ground_truth/``): its test images, labelled, with masks (layout "mvtec").
    * A folder that looks like an MVTec ``test`` folder (subfolders ``good`` and at
      least one other): labels from the subfolder names, masks from a sibling
      ``../ground_truth/<type>/`` when there is one (layout "mvtec").
    * Anything else: every image recursively, labels -1, no masks (layout "folder").

    Raises:
        FileNotFoundError / NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    _check_folder(root)
    if _is_mvtec_class_root(root):
        return mvtec_test_set(root)
    if _is_test_folder(root):
        gt = root.parent / "ground_truth"
        return _labelled_set(root, gt if gt.is_dir() else None, root)
    paths = list_images(root)
    n = len(paths)
    return ImageSet(
        root=root,
        paths=paths,
        labels=np.full(n, -1, dtype=np.int8),
        mask_paths=[None] * n,
        defect_types=[""] * n,
        layout="folder",
    )


def list_images_with_truth(root: str | Path) -> ImageSet:
    """Every image under ``root`` in :func:`list_images` order, with the ground truth its layout gives.

    The order (and so the indices) is the plain listing's; labels, masks and defect
    types come from :func:`scan_folder` where it found the image, unknown elsewhere.
    """
    paths = list_images(root)
    truth = scan_folder(root)
    found = {str(p): k for k, p in enumerate(truth.paths)}
    at = [found.get(str(p), -1) for p in paths]
    return ImageSet(
        root=Path(root), paths=paths,
        labels=np.array([truth.labels[k] if k >= 0 else -1 for k in at], dtype=np.int8),
        mask_paths=[truth.mask_paths[k] if k >= 0 else None for k in at],
        defect_types=[truth.defect_types[k] if k >= 0 else "" for k in at],
        layout=truth.layout,
    )


def unlabelled(root: str | Path, paths: list[Path]) -> ImageSet:
    """``paths`` under ``root`` as a plain folder of images: no ground truth."""
    n = len(paths)
    return ImageSet(root=Path(root), paths=paths, labels=np.full(n, -1, dtype=np.int8),
                    mask_paths=[None] * n, defect_types=[""] * n, layout="folder")
