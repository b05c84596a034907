"""What runs on a Ray worker: one model replica per actor, scoring whole engine batches.

``ModelReplica`` is the callable class Ray Data's ``map_batches`` turns into a pool of
actors. Each actor loads the model once, from the model file's bytes that the driver
put in Ray's object store (workers need not see the driver's file system), on its GPU
when Ray gave it one. Each call receives one engine batch (the image indices and paths
the local engine would put in the same batch), opens the images itself (local paths,
or any URI pyarrow's file systems read) and scores them with the local engine's own
``iter_predict``: the same decoding, the same error rows with the same text, the same
arithmetic.

Nothing here imports Ray at module level: the class is plain Python, and Ray pickles
it by reference (workers import this module from the installed package).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Environment variable (tests only): a folder where each replica writes a file named
#: after its process id when it starts, so a test can kill a worker process mid-run;
#: while a file ``delay`` there holds a number, each batch takes that many seconds more.
TEST_PID_DIR_ENV = "PATCHCORE_GUI_TEST_RAY_PID_DIR"


def _test_delay() -> float:
    """Seconds to sleep per batch (the test hook above); 0 outside tests."""
    folder = os.environ.get(TEST_PID_DIR_ENV)
    if not folder:
        return 0.0
    try:
        return float(Path(folder, "delay").read_text() or 0)
    except (OSError, ValueError):
        return 0.0


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (s3://, gs://, hdfs://, file://...); False for a local path."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1


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
    from pyarrow import fs as pafs

    tmp = tempfile.mkdtemp(prefix="patchcore-ray-")
    errors: dict[int, str] = {}
    local: list[str] = []
    try:
        for j, p in enumerate(paths):
            if not is_uri(p):
                local.append(p)
                continue
            # Keep the suffix: the decoder does not need it, but error texts stay alike.
            dest = os.path.join(tmp, f"{j}{os.path.splitext(p)[1][:8]}")
            local.append(dest)
            try:
                filesystem, inner = pafs.FileSystem.from_uri(p)
                with filesystem.open_input_stream(inner) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except FileNotFoundError:
                errors[j] = "file not found"
            except Exception as exc:  # a network or permission failure is this image's error row
                text = f"{type(exc).__name__}: {exc}".strip().splitlines()
                errors[j] = f"cannot read image: {text[0] if text else type(exc).__name__}"
        yield local, errors
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class ModelReplica:
    """A model replica in a Ray actor: ``__call__`` scores one engine batch per row.

    Args:
        model_ref: a one-element list holding the ObjectRef of the model file's bytes
            (wrapped so Ray hands the reference, not the bytes, to the constructor), or
            the bytes themselves.
        device: "auto", "cpu", "cuda" or "cuda:N", resolved inside the actor (Ray sets
            ``CUDA_VISIBLE_DEVICES`` to the GPUs it gave the actor; none: the CPU).
        precision: the run's resolved precision (exact, fast or half).
        threads: torch's intra-op threads in this actor (Ray's default is one per CPU
            reserved; a local instance gives a lone actor every core, as the local engine has).
        grid_dtype: dtype of the grids sent back (float16 as the run file stores them,
            float32 when the caller writes maps).
    """

    def __init__(self, model_ref: list[Any], device: str, precision: str, threads: int,
                 grid_dtype: str = "float16") -> None:
        import ray
        import torch

        from .model import PatchCoreModel

        if threads > 0:
            torch.set_num_threads(int(threads))
        # The bytes themselves are accepted too (a replica built outside Ray, in tests).
        ref = model_ref[0]
        data: bytes = ref if isinstance(ref, bytes) else ray.get(ref)
        fd, tmp = tempfile.mkstemp(suffix=".patchcore")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.model = PatchCoreModel.load(tmp, device=device, precision=precision)
        finally:
            os.unlink(tmp)
        del data
        self.grid_dtype = np.dtype(grid_dtype)
        pid_dir = os.environ.get(TEST_PID_DIR_ENV)
        if pid_dir:
            open(os.path.join(pid_dir, str(os.getpid())), "w").close()  # noqa: SIM115 - an empty marker

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Score the engine batches in ``batch`` (rows of ``indices`` and ``paths`` lists).

        Returns one row per image: ``index`` (int64), ``score`` (float32, NaN on an
        error row), ``grid`` (``grid_dtype``, NaN on an error row) and ``error`` (str).
        """
        from .engine import iter_predict

        delay = _test_delay()
        if delay > 0:
            time.sleep(delay)
        out_idx, out_scores, out_grids, out_err = [], [], [], []
        for indices, paths in zip(batch["indices"], batch["paths"], strict=True):
            idx = np.asarray(indices, dtype=np.int64)
            names = [str(p) for p in paths]
            with local_copies(names) as (local, fetch_errors):
                # One engine batch exactly as the local engine forms it: same images, same
                # order, so the backbone sees the same tensor and gives the same scores.
                for r in iter_predict(self.model, local, batch_size=len(local), num_workers=0,
                                      grid_dtype=self.grid_dtype.type):
                    errors = list(r.errors)
                    scores = r.scores.copy()
                    grids = r.grids.copy()
                    for j, e in fetch_errors.items():
                        errors[j], scores[j], grids[j] = e, np.nan, np.nan
                    out_idx.append(idx[r.indices])
                    out_scores.append(scores)
                    out_grids.append(grids)
                    out_err.extend(errors)
        return {
            "index": np.concatenate(out_idx),
            "score": np.concatenate(out_scores).astype(np.float32),
            "grid": np.concatenate(out_grids),
            "error": np.array(out_err, dtype=object),
        }
