"""PathList / OptionalPathList: ``Sequence[Path]`` over strings, as ``ImageSet.paths`` promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.datasets import ImageSet
from patchcore_gui.core.path_list import OptionalPathList, PathList, path_strings

STRINGS = ["/data/line3/good/000.png", "/data/line3/crack/001.png", "/data/line3/good/002.png"]


def test_items_slices_and_iteration_are_paths() -> None:
    pl = PathList(list(STRINGS))
    assert len(pl) == 3
    assert pl[1] == Path("/data/line3/crack/001.png") and isinstance(pl[1], Path)
    assert pl[-1] == Path("/data/line3/good/002.png")
    part = pl[1:]
    assert isinstance(part, PathList) and list(part) == [Path(STRINGS[1]), Path(STRINGS[2])]
    assert [type(p) for p in pl] == [type(Path("/"))] * 3
    with pytest.raises(IndexError):
        pl[3]


def test_equality_with_a_list_of_paths() -> None:
    pl = PathList(list(STRINGS))
    assert pl == [Path(s) for s in STRINGS]
    assert pl == PathList(list(STRINGS))
    assert pl != [Path(s) for s in STRINGS[:2]]
    assert pl != [Path(s) for s in reversed(STRINGS)]
    with pytest.raises(TypeError):
        hash(pl)  # a list-like container, like the list it stands for


def test_index_and_membership_take_paths_and_strings() -> None:
    pl = PathList(list(STRINGS))
    assert pl.index(Path(STRINGS[2])) == 2
    assert pl.index(STRINGS[1]) == 1
    assert pl.index("/data/line3//crack/001.png") == 1  # compared as paths, not as text
    assert Path(STRINGS[0]) in pl and Path("/data/line3/good/999.png") not in pl
    assert 42 not in pl
    with pytest.raises(ValueError):
        pl.index(Path("/elsewhere.png"))
    assert pl.count(Path(STRINGS[0])) == 1


def test_strings_are_shared_not_copied() -> None:
    strings = list(STRINGS)
    pl = PathList(strings)
    assert pl.strings is strings
    assert path_strings(pl) is strings
    assert path_strings([Path(s) for s in STRINGS]) == STRINGS
    assert PathList.of([Path(s) for s in STRINGS]).strings == STRINGS


def test_optional_paths_keep_none() -> None:
    masks = OptionalPathList([None, "/data/gt/crack/001_mask.png", None])
    assert masks[0] is None and masks[1] == Path("/data/gt/crack/001_mask.png")
    assert list(masks) == [None, Path("/data/gt/crack/001_mask.png"), None]
    assert masks == [None, Path("/data/gt/crack/001_mask.png"), None]
    assert isinstance(masks[1:], OptionalPathList) and list(masks[1:]) == [Path("/data/gt/crack/001_mask.png"), None]


@pytest.mark.parametrize("lazy", [False, True])
def test_image_set_counts_masks_either_way(lazy: bool) -> None:
    masks: list[str | None] = [None, "/data/gt/crack/001_mask.png", None]
    iset = ImageSet(
        root=Path("/data/line3"),
        paths=PathList(list(STRINGS)) if lazy else [Path(s) for s in STRINGS],
        labels=np.array([0, 1, 0], dtype=np.int8),
        mask_paths=OptionalPathList(masks) if lazy else [None if m is None else Path(m) for m in masks],
        defect_types=["good", "crack", "good"],
        layout="mvtec",
    )
    assert len(iset) == 3 and iset.mask_count == 1
    assert iset.paths[1] == Path(STRINGS[1]) and iset.mask_paths[1] == Path(masks[1])
