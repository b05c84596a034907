"""Writing a new run file: the run-level facts, the image list, one atomic rename.

``RunFile.create`` (``core/run_file.py``) calls :func:`write_new_run_file` and then
opens the result for writing.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .datasets import ImageSet
from .precision import recorded_precision
from .run_file_format import (
    APPLICATION_ID,
    FORMAT_NAME,
    FORMAT_VERSION,
    SCHEMA,
    RunFileError,
    display,
    file_sha256,
    nan_none,
    now_iso,
)
from .uri_listing import is_uri, stored_path

if TYPE_CHECKING:
    from .model import PatchCoreModel


def write_new_run_file(target: Path, model: PatchCoreModel, image_set: ImageSet, settings: dict[str, Any],
                       model_sha256: str | None = None) -> None:
    """Write a new run file at ``target`` (status "running"); refuse an existing file.

    See ``RunFile.create`` for what ``settings`` must hold.
    """
    from .engine import software_versions

    if target.exists():
        raise RunFileError(f"run file {target} already exists; resume it or choose another name")
    if "batch_size" not in settings:
        raise ValueError("settings need 'batch_size' (resume must batch images the same way)")
    settings = dict(settings)
    if "precision" in settings:  # the resolved name, never an old alias
        if not recorded_precision(settings["precision"]):
            raise ValueError(f"settings' precision must be exact, fast or half, got {settings['precision']!r}")
        settings["precision"] = recorded_precision(settings["precision"])
    if model_sha256 is None:
        model_sha256 = file_sha256(model.path) if model.path is not None and Path(model.path).is_file() else ""
    th = model.threshold_info
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": now_iso(),
        "status": "running",
        "status_message": "",
        "model_path": os.fspath(Path(model.path).resolve()) if model.path is not None else "",
        "model_sha256": model_sha256,
        "model_summary": model.summary(),
        "model_metadata": model.metadata,
        "folder": str(image_set.root) if is_uri(str(image_set.root)) else os.fspath(Path(image_set.root).resolve()),
        "layout": image_set.layout,
        "settings": dict(settings),
        "image_threshold": model.image_threshold,
        "pixel_threshold": model.pixel_threshold,
        "review_from": nan_none(model.review_from),
        "threshold_source": th.get("source", ""),
        "threshold_rule": th.get("rule", ""),
        "software": software_versions(),
        "sessions": [{"time": now_iso(), "pid": os.getpid(), "host": socket.gethostname(),
                      "device": str(settings.get("device", "")), "resume": False}],
    }
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        conn = sqlite3.connect(os.fspath(tmp), isolation_level=None)
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            conn.executemany(
                "INSERT INTO images (idx, path, display, label, defect_type, mask_path) VALUES (?, ?, ?, ?, ?, ?)",
                _image_rows(image_set),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        os.replace(tmp, target)
    except BaseException:
        for p in (tmp, tmp.with_name(tmp.name + "-journal")):
            p.unlink(missing_ok=True)
        raise


def _image_rows(image_set: ImageSet) -> Iterator[tuple[Any, ...]]:
    for i, (p, lab, typ, mask) in enumerate(zip(
        image_set.paths, image_set.labels.tolist(), image_set.defect_types, image_set.mask_paths, strict=True
    )):
        raw = os.fsencode(stored_path(p))  # absolute (a report or resume may run elsewhere); URIs as given
        yield (i, raw, display(raw), int(lab), str(typ),
               None if mask is None else os.fsencode(os.path.abspath(mask)))
