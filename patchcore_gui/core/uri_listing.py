"""Images named by URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``...): listing and fetching.

``patchcore predict --images URI`` lists a folder that any of pyarrow's file systems
reads (``pyarrow.fs.FileSystem.from_uri``), with the local listing's rules: recursive,
the same image extensions in any case, hidden files and folders (a name starting with
".") skipped, sorted by relative POSIX path. Each image is then named by its own URI
(the folder's URI, a "/", the relative path percent-encoded, the folder's query string
if it had one), and that URI is what the run file, the CSV and the workers see.

In an :class:`~patchcore_gui.core.datasets.ImageSet` a URI is a :class:`UriPath`: a path
whose ``str()`` and ``os.fspath()`` give the URI unchanged (``Path("s3://b/k")`` would
fold the "//" and give "s3:/b/k"), while ``name``, ``suffix`` and ``stem`` work as on a
path. Workers and the local engine fetch each image with :func:`local_copies` (one file
system per bucket or host, kept for the process) into a temporary folder and decode the
copy with the local decoder, so error rows read as they do locally.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np

from patchcore_gui.io.images import IMAGE_EXTENSIONS, MAX_PIXELS, ImageLoadError, load_image

from .datasets import ImageSet

#: Images of one batch fetched at the same time.
FETCH_THREADS = 8

__all__ = ["UriPath", "is_uri", "join_uri", "list_uri_images", "load_any_image", "local_copies", "stored_path"]


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (s3://, gs://, hdfs://, file://...); False for a local path."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1


class UriPath(PurePosixPath):
    """A URI among image paths: ``str()`` / ``os.fspath()`` give the URI, ``name`` and ``suffix`` its file's.

    Equal (and hashed, and ordered) by the URI text. Paths derived from it (``parent``,
    ``with_name``) are plain ``PurePosixPath`` parts of the URI's path.
    """

    __slots__ = ("uri",)

    def __new__(cls, uri: str) -> UriPath:
        parts = urlsplit(uri)
        # The bucket / host leads the path part, so parent and parts read as a location.
        self = super().__new__(cls, "/" + parts.netloc + unquote(parts.path))
        self.uri = uri
        return self

    def __str__(self) -> str:
        try:
            return self.uri
        except AttributeError:  # made by pathlib from a UriPath (parent, with_name...): a plain path
            return super().__str__()

    def __fspath__(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"UriPath({str(self)!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (UriPath, (str(self),))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UriPath):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: object) -> bool:
        if isinstance(other, UriPath):
            return str(self) < str(other)
        return NotImplemented


def stored_path(path: str | os.PathLike[str]) -> str:
    """The text a run file stores for an image: a URI as it is, a local path made absolute."""
    text = os.fspath(path)
    return text if is_uri(text) else os.path.abspath(text)


def join_uri(base: str, rel: str) -> str:
    """The URI of ``rel`` (a relative POSIX path) under the folder URI ``base``.

    ``rel`` is percent-encoded (pyarrow decodes a URI's path); a query string
    (``?region=...``) stays at the end, where the file system's options belong.
    """
    head, sep, query = base.partition("?")
    return f"{head.rstrip('/')}/{quote(rel, safe='/')}{sep}{query}"


def _open_fs(uri: str) -> tuple[Any, str]:
    """(pyarrow file system, path inside it) for ``uri``; ValueError (one line) when pyarrow cannot."""
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # ArrowInvalid (bad URI, unknown scheme), OSError (no credentials...)
        raise ValueError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def list_uri_images(uri: str) -> tuple[ImageSet, bool]:
    """Images under the folder ``uri`` as :func:`~patchcore_gui.core.datasets.list_images` lists a folder.

    Returns (image set of :class:`UriPath`, no ground truth, layout "folder"; True when the
    folder looks like a labelled layout: ``test/`` or ``good/`` beside other type folders).

    Raises:
        FileNotFoundError: nothing at ``uri``.
        NotADirectoryError: ``uri`` is a file.
        ValueError: pyarrow cannot open it (unknown scheme, bad URI, no access); one line.
    """
    from pyarrow import fs as pafs

    filesystem, inner = _open_fs(uri)
    try:
        info = filesystem.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"folder not found: {uri}")
        if info.type != pafs.FileType.Directory:
            raise NotADirectoryError(f"not a folder: {uri}")
        entries = filesystem.get_file_info(pafs.FileSelector(inner, recursive=True))
    except (FileNotFoundError, NotADirectoryError):
        raise
    except Exception as exc:  # permission, network: one line
        raise ValueError(_first_line(exc)) from None
    base = inner.rstrip("/") + "/"
    rels: list[str] = []
    for e in entries:
        if e.type != pafs.FileType.File or not e.path.startswith(base):
            continue
        rel = e.path[len(base):]
        if any(part.startswith(".") for part in rel.split("/")):
            continue  # hidden file, or inside a hidden folder: skipped, as locally
        if os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS:
            rels.append(rel)
    rels.sort()
    n = len(rels)
    image_set = ImageSet(root=UriPath(uri), paths=[UriPath(join_uri(uri, r)) for r in rels],
                         labels=np.full(n, -1, dtype=np.int8), mask_paths=[None] * n,
                         defect_types=[""] * n, layout="folder")
    return image_set, _looks_labelled(rels)


def _looks_labelled(rels: list[str]) -> bool:
    """True when the folders would give ground truth locally (an MVTec class or test folder)."""
    top = {r.split("/", 1)[0].lower() for r in rels if "/" in r}
    in_types = any(r.lower().startswith("test/") and r.count("/") >= 2 for r in rels)  # test/<type>/image
    return in_types or ("good" in top and len(top) >= 2)


class _FileSystems:
    """One pyarrow file system per scheme, host and query (an S3 client resolves its
    credentials once, not per image); a URI whose path pyarrow maps oddly is opened alone."""

    def __init__(self) -> None:
        self._by_host: dict[tuple[str, str, str], tuple[Any, str]] = {}

    def open(self, uri: str) -> Any:
        """An input stream on ``uri``."""
        parts = urlsplit(uri)
        key = (parts.scheme, parts.netloc, parts.query)
        tail = unquote(parts.path)
        known = self._by_host.get(key)
        if known is None:
            filesystem, inner = _open_fs(uri)
            if not tail or not inner.endswith(tail):
                return filesystem.open_input_stream(inner)
            known = self._by_host[key] = (filesystem, inner[: len(inner) - len(tail)])
        filesystem, prefix = known
        return filesystem.open_input_stream(prefix + tail)


_FILE_SYSTEMS = _FileSystems()


@contextlib.contextmanager
def local_copies(paths: list[str]) -> Iterator[tuple[list[str], dict[int, str]]]:
    """Local file names for ``paths``: URIs are copied into a temporary folder, paths kept.

    Yields (local names, {position: error}) where a URI that cannot be fetched has an
    error in the same words the local decoder uses ("file not found", ...); its local
    name then points at nothing. The temporary folder is removed afterwards.
    """
    if not any(is_uri(p) for p in paths):
        yield paths, {}
        return
    tmp = tempfile.mkdtemp(prefix="patchcore-uri-")
    errors: dict[int, str] = {}
    local: list[str] = []
    fetch: list[tuple[int, str, str]] = []
    for j, p in enumerate(paths):
        if not is_uri(p):
            local.append(p)
            continue
        # Keep the suffix: the decoder does not need it, but error texts stay alike.
        dest = os.path.join(tmp, f"{j}{os.path.splitext(p.partition('?')[0])[1][:8]}")
        local.append(dest)
        fetch.append((j, p, dest))

    def copy(job: tuple[int, str, str]) -> tuple[int, str]:
        j, uri, dest = job
        try:
            with _FILE_SYSTEMS.open(uri) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except FileNotFoundError:
            return j, "file not found"
        except Exception as exc:  # a network or permission failure is this image's error row
            text = f"{type(exc).__name__}: {exc}".strip().splitlines()
            return j, f"cannot read image: {text[0]}"
        return j, ""

    try:
        # A batch's fetches run side by side: on object stores each one is mostly waiting.
        with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(fetch))) as pool:
            errors = {j: e for j, e in pool.map(copy, fetch) if e}
        yield local, errors
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_any_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> Any:
    """``io.images.load_image`` for a path or a URI (fetched into a temporary file first).

    A run of ``predict --images s3://...`` names its images by URI: the window shows
    them, explains their patches and teaches from them through this.

    Raises:
        ImageLoadError: one line, as ``load_image`` (a URI that cannot be fetched:
            "file not found", "cannot read image: ...").
    """
    text = os.fspath(path)
    if not is_uri(text):
        return load_image(text, max_pixels=max_pixels)
    with local_copies([text]) as (local, errors):
        if errors:
            raise ImageLoadError(errors[0])
        return load_image(local[0], max_pixels=max_pixels)
