"""Image paths kept as strings, handed out as ``Path`` objects one at a time.

A run of 1,000,000 images listed as ``Path`` objects costs ~11 s to build on a 2-core
machine (``pathlib`` parses every path into parts) and puts two garbage-collector-tracked
objects per image in the heap; a ``str`` per image costs a fraction of that and is not
tracked at all. ``PathList`` is the ``Sequence[Path]`` that ``ImageSet.paths`` promises,
over a list of ``str``: an item, a slice or an iteration makes the ``Path`` objects asked
for and no others, and code that only needs the strings (the result table, the engine)
reads ``strings`` without making any.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

__all__ = ["OptionalPathList", "PathList", "path_strings"]


class _StrBacked(Sequence[Any]):
    """Shared part of the two lists: a read-only sequence over a list of strings (or None)."""

    __slots__ = ("_s",)

    def __init__(self, strings: list[Any]) -> None:
        # Held, not copied: the lists come from a reader that drops its own reference.
        self._s = strings

    def __len__(self) -> int:
        return len(self._s)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same paths (a list of ``Path`` included)."""
        if isinstance(other, _StrBacked):
            return self._s == other._s
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container semantics, like list

    def __repr__(self) -> str:
        head = ", ".join(repr(p) for p in self[:3])
        return f"{type(self).__name__}([{head}{', ...' if len(self) > 3 else ''}], {len(self)} items)"


class PathList(_StrBacked, Sequence[Path]):
    """An immutable ``Sequence[Path]`` over path strings; ``Path`` objects are made on access."""

    __slots__ = ()

    @classmethod
    def of(cls, paths: Iterable[str | os.PathLike[str]]) -> PathList:
        """A list of these paths (``str`` or path-like)."""
        return cls([os.fspath(p) for p in paths])

    @property
    def strings(self) -> list[str]:
        """The paths as ``str`` (the list itself, shared: do not modify it)."""
        return self._s

    @overload
    def __getitem__(self, i: int) -> Path: ...

    @overload
    def __getitem__(self, i: slice) -> PathList: ...

    def __getitem__(self, i: int | slice) -> Path | PathList:
        if isinstance(i, slice):
            return PathList(self._s[i])
        return Path(self._s[i])

    def __iter__(self) -> Iterator[Path]:
        return map(Path, self._s)

    def __contains__(self, value: object) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """Position of the path ``value`` (str or path-like), as ``list.index`` on ``Path`` items."""
        stop = len(self._s) if stop is None else stop
        if isinstance(value, str | os.PathLike):
            key = os.fspath(value)
            try:  # the stored strings are usually written as Path prints them: no Path made
                return self._s.index(key, start, stop)
            except ValueError:
                target = Path(key)
                for k in range(max(start, 0), min(stop, len(self._s))):
                    if Path(self._s[k]) == target:
                        return k
        raise ValueError(f"{value!r} is not in the list")


class OptionalPathList(_StrBacked, Sequence[Path | None]):
    """Like ``PathList``, with None where there is no path (mask files of good images)."""

    __slots__ = ()

    @property
    def strings(self) -> list[str | None]:
        """The paths as ``str`` or None (the list itself, shared: do not modify it)."""
        return self._s

    @overload
    def __getitem__(self, i: int) -> Path | None: ...

    @overload
    def __getitem__(self, i: slice) -> OptionalPathList: ...

    def __getitem__(self, i: int | slice) -> Path | None | OptionalPathList:
        if isinstance(i, slice):
            return OptionalPathList(self._s[i])
        s = self._s[i]
        return None if s is None else Path(s)

    def __iter__(self) -> Iterator[Path | None]:
        return (None if s is None else Path(s) for s in self._s)


def path_strings(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``paths`` as a list of ``str``: a ``PathList``'s own strings (no copy; URIs intact, which
    its ``Path`` items would fold), else converted."""
    if isinstance(paths, PathList):
        return paths.strings
    return [os.fspath(p) for p in paths]
