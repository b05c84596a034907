"""File names: the next free name beside an existing file.

One rule for every "do not replace a file" default (new run files, new model files):
``name.ext``, then ``name-2.ext``, ``name-3.ext`` ...
"""

from __future__ import annotations

from pathlib import Path


def next_free_path(first: Path) -> Path:
    """``first`` if no file is there, else the first of ``<stem>-2<suffix>``, ``<stem>-3<suffix>``... that is free."""
    path, n = first, 1
    while path.exists():
        n += 1
        path = first.with_name(f"{first.stem}-{n}{first.suffix}")
    return path
