"""Driving a prediction run into a run file: new runs and resumes.

``predict_into_run`` runs ``engine.iter_predict`` and commits one transaction per batch
into a :class:`~patchcore_gui.core.run_file.RunFile`; the CLI and the GUI worker use it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .datasets import ImageSet
from .precision import recorded_precision
from .results import BatchResult
from .run_file import TEST_DELAY_ENV, ModelChangedError, RunFile, RunFileError, file_sha256

if TYPE_CHECKING:
    from .model import PatchCoreModel

# --------------------------------------------------------------------------- driving a run


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`predict_into_run` did: final status, images scored now / done / total."""

    status: str
    scored_now: int
    done: int
    total: int
    seconds: float


def check_model(store: RunFile, model: PatchCoreModel) -> None:
    """Raise ModelChangedError unless ``model`` was loaded from the run's model file, unchanged."""
    if model.path is None or not Path(model.path).is_file():
        raise ModelChangedError("the model has no file to check against the run's model")
    want = store.meta.get("model_sha256", "")
    if want and file_sha256(model.path) != want:
        raise ModelChangedError(
            f"model file {Path(model.path).name} has changed since the run started (SHA-256 differs); "
            "cannot resume with another model"
        )


def predict_into_run(
    model: PatchCoreModel,
    image_set: ImageSet | None,
    run: str | os.PathLike[str] | RunFile,
    *,
    batch_size: int | None = None,
    num_workers: int | None = 0,
    device: str | None = None,
    cancel: threading.Event | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    grid_dtype: type = np.float16,
    scorer: Callable[..., Iterator[BatchResult]] | None = None,
    extra_settings: dict[str, Any] | None = None,
) -> RunOutcome:
    """Score ``image_set`` into a run file, one committed transaction per engine batch.

    New run (``resume=False``): ``run`` must not exist (or be a fresh ``RunFile``).
    Resume: ``run`` is an existing run file; ``image_set`` may be None (the run's own list
    is used), the model must be the run's model file unchanged (:class:`ModelChangedError`),
    ``batch_size`` None or equal to the run's. Only images not yet done are scored.

    ``progress(done, total)`` and ``on_batch(result)`` are called after each commit (from
    the calling thread). The status ends as finished, cancelled (``cancel`` set or
    KeyboardInterrupt) or failed (an exception, re-raised). A ``RunFile`` passed in
    stays open; a path is opened and closed here.

    ``scorer``: called as ``engine.iter_predict`` is (the default); the Ray engine's
    ``RayScorer`` yields the same batches from a cluster, in completion order.
    ``extra_settings``: recorded in a new run's settings beside device and batch size
    (the engine and its workers).
    """
    from .batching import default_batch_size, default_num_workers
    from .engine import iter_predict

    dev = str(device or model.device)
    if num_workers is None:
        num_workers = default_num_workers(model.device)
    owned = not isinstance(run, RunFile)
    if resume:
        store, image_set, batch_size = _open_for_resume(run, owned, model, image_set, batch_size, dev, num_workers)
    else:
        if image_set is None:
            raise ValueError("a new run needs an image set")
        batch_size = batch_size or default_batch_size(model)
        settings = {"device": dev, "batch_size": int(batch_size), "num_workers": int(num_workers),
                    "precision": model.precision, **(extra_settings or {})}
        store = RunFile.create(run, model, image_set, settings) if owned else run  # type: ignore[arg-type]
    delay = float(os.environ.get(TEST_DELAY_ENV, "0") or 0)
    total = len(image_set)
    done_idx = store.done_indices()
    done, scored = len(done_idx), 0
    t0 = time.perf_counter()
    status = "failed"
    try:
        try:
            for result in (scorer or iter_predict)(model, image_set, batch_size=batch_size, num_workers=num_workers,
                                       cancel=cancel, grid_dtype=grid_dtype, skip=done_idx):
                store.add_batch(result)
                done += len(result)
                scored += len(result)
                if on_batch is not None:
                    on_batch(result)
                if progress is not None:
                    progress(done, total)
                if delay > 0:
                    time.sleep(delay)
            status = "cancelled" if done < total else "finished"
            _record_drift(store, model)
            store.set_status(status)
        except BaseException as exc:
            _record_stop(store, exc)
            raise
    finally:
        if owned:
            store.close()
    return RunOutcome(status, scored, done, total, time.perf_counter() - t0)


def _record_drift(store: RunFile, model: PatchCoreModel) -> None:
    """Record the drift check of the run's scores against the model's calibration (core/drift.py)."""
    from .drift import check_drift

    cols = store.columns()
    store.set_drift(check_drift(cols["score"], model.calibration_scores, cols["label"]).to_json())


def _record_stop(store: RunFile, exc: BaseException) -> None:
    """Write why a run stopped early: Ctrl+C is a cancel, anything else a failure with its first line."""
    if isinstance(exc, KeyboardInterrupt):
        store.set_status("cancelled", "interrupted")
        return
    text = str(exc).strip().splitlines()
    store.set_status("failed", f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)


def _open_for_resume(
    run: str | os.PathLike[str] | RunFile,
    owned: bool,
    model: PatchCoreModel,
    image_set: ImageSet | None,
    batch_size: int | None,
    dev: str,
    num_workers: int,
) -> tuple[RunFile, ImageSet, int]:
    """Open a run to resume and check it may be resumed as asked: (store, image set, batch size).

    The model, the batch size and the precision must be the run's, so the scores match an
    uninterrupted run; a new session is recorded. A store opened here is closed on refusal.
    """
    store = RunFile.open(run) if owned else run  # type: ignore[arg-type]
    try:
        check_model(store, model)
        stored_bs = int(store.settings.get("batch_size", 0))
        if batch_size is not None and stored_bs and batch_size != stored_bs:
            raise ValueError(
                f"this run was scored in batches of {stored_bs}; resume with the same batch size "
                f"(not {batch_size}) so the scores match an uninterrupted run"
            )
        batch_size = stored_bs or batch_size or 8
        # Old run files say fp32 / bf16: the same arithmetic as exact / fast.
        stored_precision = recorded_precision(store.settings.get("precision"))
        if stored_precision and stored_precision != model.precision:
            raise ValueError(
                f"this run was scored with precision {stored_precision}; resume with the same "
                f"(not {model.precision}) so the scores match an uninterrupted run"
            )
        image_set = store.image_set() if image_set is None else image_set
        if len(image_set) != len(store):
            raise RunFileError(f"the run has {len(store)} images but {len(image_set)} were given")
        store.add_session(device=dev, resume=True, num_workers=num_workers)
    except BaseException:
        if owned:
            store.close()
        raise
    return store, image_set, batch_size


# --------------------------------------------------------------------------- reading a run back


@dataclass(frozen=True)
class RunResults:
    """A run's per-image results in index order, as the predict CSV and maps need them."""

    paths: list[str]
    scores: np.ndarray  # float32, NaN when not scored or failed
    errors: list[str]  # "" when the image scored
    threshold: float  # the run's image threshold now
    grids: list[np.ndarray]  # float32 grids, only when asked for; (1, 1) NaN for a failed image
    review_from: float = float("nan")  # the run's review-band start now (NaN: no band)


def run_progress(path: str | os.PathLike[str], image_set: ImageSet | None) -> tuple[int, int]:
    """(images done, images in all) of the run about to start or resume at ``path``."""
    if image_set is not None:
        return 0, len(image_set)
    with RunFile.open(path, readonly=True) as rs:
        return len(rs.done_indices()), len(rs)


def read_results(path: str | os.PathLike[str], listed: ImageSet | None = None,
                 grids_now: dict[int, np.ndarray] | None = None) -> RunResults:
    """Read a run's results back (read-only).

    ``listed``: the image set the run was started with; its paths name the images as
    they were listed (the run stores absolute paths). ``grids_now``: float32 grids kept
    while predicting, by index; when given, the grids of the other images (scored before
    a resume) are read from the run's float16 grids and every image's grid is returned.
    """
    with RunFile.open(path, readonly=True) as rs:
        paths, cols, err_map, thr, rf = rs.paths(), rs.columns(), rs.errors(), rs.image_threshold, rs.review_from
        if listed is not None:
            paths = [str(p) for p in listed.paths]
        grids: list[np.ndarray] = []
        if grids_now is not None:
            have = dict(grids_now)
            missing = [i for i in range(len(paths)) if i not in have]
            for i, g in rs.iter_grids(missing):
                have[i] = g.astype(np.float32) if g is not None else np.full((1, 1), np.nan, np.float32)
            grids = [have[i] for i in range(len(paths))]
    errors = [err_map.get(i, "") for i in range(len(paths))]
    return RunResults(paths, cols["score"], errors, thr, grids, rf)
