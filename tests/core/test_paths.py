"""core/paths.py: the one "next free file name" rule."""

from __future__ import annotations

from pathlib import Path

from patchcore_gui.core.paths import next_free_path


def test_next_free_path_counts_from_two(tmp_path: Path) -> None:
    first = tmp_path / "bottle-resnet18.patchcore"
    assert next_free_path(first) == first
    first.write_bytes(b"")
    assert next_free_path(first) == tmp_path / "bottle-resnet18-2.patchcore"
    (tmp_path / "bottle-resnet18-2.patchcore").write_bytes(b"")
    (tmp_path / "bottle-resnet18-3.patchcore").mkdir()  # a folder takes the name too
    assert next_free_path(first) == tmp_path / "bottle-resnet18-4.patchcore"


def test_next_free_path_keeps_the_suffix(tmp_path: Path) -> None:
    first = tmp_path / "20260101-120000-images.pcrun"
    first.write_bytes(b"")
    assert next_free_path(first).name == "20260101-120000-images-2.pcrun"
