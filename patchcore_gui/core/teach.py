"""Teach as good: extend a model's memory bank with images an operator reviewed as OK.

``teach(model, good_paths, note, user)`` returns a **new** model (the parent is never
modified; undo = keep using the parent file) and a :class:`TeachReport`:

1. Every image is read first; any that cannot be read (or has an aspect ratio the
   model refuses) is named in a :class:`TeachError` and nothing is computed.
2. The images are embedded with the model's own backbone and embedding.
3. **Coverage rule: greedy coreset extension.** The farthest-point selection that built
   the bank is continued from the current bank over the new patches: each new patch
   starts at its squared distance to the nearest bank row; the farthest is added, the
   others' distances are lowered to it, and so on, for the model's coreset fraction of
   the new patches (every new patch at fraction 1; patches already in the bank, distance
   0, are never added). Why this rule and not "every new patch farther than the bank's
   coverage radius": it is the rule every training image went through, so a taught image
   is represented with the same density (its patches end no farther from the bank than
   the training images' were), the number of rows added is known in advance (the bank
   grows by the fraction, as a retrain would), and there is no radius to estimate.
   Distances here are exact squared L2 in the full feature dimension (the training
   coreset ranks rows in a 128-d random projection; the extension is small enough to
   rank by the distance the scores use).
4. ``bank_source``, the training file list (path, SHA-256) and the training pictures
   are extended; the new images get the next training-image indices.
5. **Calibration (approximation, stated):** each taught image is scored against the new
   bank without its own rows (as training scores every training image) and its score
   joins the calibration scores; the other images' calibration scores are kept as they
   were, although the new rows could only lower them (re-scoring them would need their
   features, which the model file does not keep). The thresholds are recomputed from the
   extended scores with the rule the model records (``_recalibrated``), unless
   ``keep_thresholds`` (the operator keeps the parent's: taught images' out-of-bank scores
   are high by nature, so re-derived thresholds rise, docs/evidence-teach.md).
6. ``metadata["teach_history"]`` gets {parent_sha256, taught: [{path, sha256}], user,
   time, note, rows_added}.

:func:`flips` re-scores an image set with the parent and the new model and lists the
verdicts that change (with ground truth where known). Qt-free.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from .coreset import CancelledError, coreset_size
from .out_of_bank import out_of_bank_scores
from .provenance import file_sha256
from .search import NearestNeighbourSearch
from .training_pictures import appended, encode_picture, stored_format

#: progress(stage, done, total); stages "embedding", "coverage", "calibration".
Progress = Callable[[str, int, int], None]
BATCH = 8


class TeachError(ValueError):
    """Teaching refused (unreadable images, an empty list); one line naming the images."""


@dataclass
class TaughtImage:
    """One taught image: its file, its score before, its new calibration score, rows added."""

    path: str
    sha256: str
    score_before: float
    score_after: float  # out-of-bank: against the new bank without its own rows
    rows_added: int


@dataclass
class TeachReport:
    """What :func:`teach` did."""

    images: list[TaughtImage]
    rows_before: int
    rows_added: int
    rule: str
    image_threshold_before: float
    image_threshold_after: float
    pixel_threshold_before: float
    pixel_threshold_after: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short text summary for the command line and the window."""
        out = [f"taught {len(self.images)} image(s): bank {self.rows_before} -> "
               f"{self.rows_before + self.rows_added} rows (+{self.rows_added}) in {self.seconds:.1f} s",
               f"image threshold {self.image_threshold_before:.6g} -> {self.image_threshold_after:.6g}, "
               f"pixel threshold {self.pixel_threshold_before:.6g} -> {self.pixel_threshold_after:.6g}"]
        out += [f"  {os.path.basename(t.path)}: score {t.score_before:.6g} -> {t.score_after:.6g} "
                f"(out of bank), +{t.rows_added} rows" for t in self.images]
        return out + self.notes


def current_user() -> str:
    """The login name, or "unknown" (containers without one)."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:
        return "unknown"


def _read_all(model: Any, paths: Sequence[str]) -> list[torch.Tensor]:
    """Every image preprocessed, or a TeachError naming each one that cannot be used."""
    from ..io.images import ImageLoadError
    from .image_dataset import check_aspect_ratio
    from .uri_listing import load_any_image

    tensors, bad = [], []
    for p in paths:
        try:
            img = load_any_image(p)
            check_aspect_ratio(img.size, model.preprocess)
            tensors.append(model.preprocess(img))
        except (ImageLoadError, OSError, ValueError) as exc:
            bad.append(f"{os.path.basename(p)} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    if bad:
        raise TeachError("cannot teach: unreadable image(s): " + "; ".join(bad) + " (nothing was written)")
    return tensors


def extend_coverage(bank: torch.Tensor, new: torch.Tensor, fraction: float,
                    cancel: threading.Event | None = None) -> np.ndarray:
    """Indices into ``new`` the greedy extension adds (module docstring, step 3), in pick order."""
    n = int(new.shape[0])
    m = n if fraction >= 1.0 else coreset_size(n, fraction)
    d, _ = NearestNeighbourSearch(bank, "cpu").search(new, 1)
    dist = torch.from_numpy(np.ascontiguousarray(d[:, 0], dtype=np.float32))
    x = new.to(torch.float32).contiguous()
    norms = (x * x).sum(dim=1)
    picks: list[int] = []
    for i in range(m):
        j = int(torch.argmax(dist))
        if float(dist[j]) <= 0.0:
            break  # everything left is already in the bank
        picks.append(j)
        # Exact squared distance to the new row (elementwise, not the BLAS expansion).
        dj = ((x - x[j]) ** 2).sum(dim=1) if x.shape[1] <= 256 else (norms + norms[j] - 2.0 * (x @ x[j])).clamp_min_(0)
        torch.minimum(dist, dj, out=dist)
        dist[j] = 0.0
        if cancel is not None and i % 256 == 0 and cancel.is_set():
            raise CancelledError("teaching cancelled")
    return np.asarray(picks, dtype=np.int64)


def _recalibrated(meta: dict[str, Any], scores: np.ndarray, maxima: np.ndarray,
                  keep_thresholds: bool = False) -> dict[str, Any]:
    """``meta``'s calibration and thresholds recomputed from the extended scores.

    A model with a false-reject rate (issue 13) keeps it (``threshold_for_rate``);
    otherwise the calibration rule (``calibration.threshold_rule``). A threshold set by
    hand is kept as it is (the operator chose it); only the calibration is extended.
    """
    from . import calibration

    cal = dict(meta.get("calibration", {}))
    cal["scores"] = [float(s) for s in scores]
    if maxima.size:
        cal["map_maxima_values"] = [float(v) for v in maxima]
    cal["image_scores"] = calibration.describe(scores)
    cal["map_maxima"] = calibration.describe(maxima) if maxima.size else cal.get("map_maxima", {})
    meta["calibration"] = cal
    th = dict(meta.get("threshold", {}))
    if th.get("source") == "calibration" and not keep_thresholds:
        rate = th.get("false_reject_rate")
        if rate is not None:  # issue 13's calibration: the same false-reject rate, more scores
            image_t, image_x = calibration.rate_estimate(scores, float(rate))
            th["image"] = image_t
            rule = f"image: {calibration.rate_rule(float(rate), int(np.isfinite(scores).sum()), image_x)}"
            if maxima.size:
                pixel_t, pixel_x = calibration.rate_estimate(maxima, float(rate))
                th["pixel"] = pixel_t
                n_max = int(np.isfinite(maxima).sum())
                rule += "; pixel: " + calibration.rate_rule(float(rate), n_max, pixel_x, "out-of-bank map maxima")
            th["rule"] = rule + " (after teaching)"
            th["count"] = int(np.isfinite(scores).sum())
        else:  # a model calibrated on a held-out slice: its rule, on the extended scores
            th["image"] = calibration.threshold_rule(scores)
            if maxima.size:
                th["pixel"] = calibration.threshold_rule(maxima)
    meta["threshold"] = th
    return meta


def _parent_sha(model: Any) -> str:
    if getattr(model, "path", None) is not None and os.path.isfile(model.path):
        return file_sha256(model.path)
    return str(model.metadata.get("tensor_sha256", ""))


def teach(model: Any, good_paths: Sequence[str | os.PathLike[str]], note: str = "", user: str | None = None, *,
          keep_thresholds: bool = False,
          progress: Progress | None = None, cancel: threading.Event | None = None) -> tuple[Any, TeachReport]:
    """A new model with ``good_paths`` taught as good, and what was done (module docstring)."""
    from .model import PatchCoreModel

    t0 = time.perf_counter()
    paths = [os.fspath(p) for p in good_paths]
    if not paths:
        raise TeachError("no images to teach")
    batch = _read_all(model, paths)
    before = model.metadata
    feats_list: list[torch.Tensor] = []
    scores_before: list[float] = []
    grid = (0, 0)
    for i in range(0, len(batch), BATCH):
        x = torch.stack(batch[i:i + BATCH])
        f, grid = model.embed(x)
        feats_list.append(f.to("cpu", torch.float32))
        for row in f:
            dist, _ = model.search.search(row, model.config.k)
            scores_before.append(float(np.mean(dist, axis=-1).max()))
        if cancel is not None and cancel.is_set():
            raise CancelledError("teaching cancelled")
        if progress:
            progress("embedding", min(i + BATCH, len(batch)), len(batch))
    feats = torch.cat(feats_list)  # (n, h*w, D)
    n, per, dim = feats.shape
    flat = feats.reshape(n * per, dim)
    fraction = float(before.get("coreset", {}).get("fraction", 1.0) or 1.0)
    if progress:
        progress("coverage", 0, 1)
    picks = extend_coverage(model.bank, flat, fraction, cancel)
    if progress:
        progress("coverage", 1, 1)
    old_files = model.training_files
    n_old = len(old_files) if old_files else int(before.get("training", {}).get("image_count") or 0)
    new_bank = torch.cat([model.bank, flat[torch.from_numpy(picks)]]).contiguous()
    new_src = np.stack([n_old + picks // per, picks % per], axis=1).astype(np.int32)
    bank_source = None
    notes: list[str] = []
    if model.bank_source is not None:
        bank_source = np.concatenate([model.bank_source, new_src])
    else:
        notes.append("the parent has no bank provenance, so the new rows' sources are not recorded either")

    # Calibration scores of the taught images: against the new bank without their own rows,
    # exactly as training scores its images (core.out_of_bank; old rows belong to no taught image).
    owner = np.full(new_bank.shape[0], -1, dtype=np.int64)
    owner[model.bank_size:] = picks // per
    h_scores, h_max = out_of_bank_scores(
        feats, new_bank, owner, grid, model.config.k, model.config.reweight, model.config.crop, "cpu",
        (lambda d, t: progress("calibration", d, t)) if progress else None, cancel)
    records = [{"path": p, "sha256": file_sha256(p)} for p in paths]
    meta = _new_metadata(model, records, h_scores, h_max, note, user, len(picks), keep_thresholds)
    extra = dict(model.extra_tensors)
    side, quality = stored_format(model.extra_tensors)  # taught pictures match the stored ones
    pics = [encode_picture(_pil(p), model.preprocess, side, quality) for p in paths]
    extra.update(appended(model.extra_tensors, pics, n_old))
    new = PatchCoreModel(model.config, model.extractor, new_bank, meta, device=model.device,
                         precision=model.requested_precision, bank_source=bank_source, extra_tensors=extra)
    per_image = np.bincount(picks // per, minlength=n) if len(picks) else np.zeros(n, dtype=np.int64)
    report = TeachReport(
        images=[TaughtImage(p, r["sha256"], scores_before[i], float(h_scores[i]), int(per_image[i]))
                for i, (p, r) in enumerate(zip(paths, records, strict=True))],
        rows_before=model.bank_size, rows_added=int(len(picks)),
        rule=f"greedy coreset extension, fraction {fraction:g} of the new patches",
        image_threshold_before=model.image_threshold, image_threshold_after=new.image_threshold,
        pixel_threshold_before=model.pixel_threshold, pixel_threshold_after=new.pixel_threshold,
        seconds=time.perf_counter() - t0, notes=notes,
    )
    return new, report


def _pil(path: str) -> Any:
    from .uri_listing import load_any_image

    return load_any_image(path)


def _new_metadata(model: Any, records: list[dict[str, str]], h_scores: list[float], h_max: list[float],
                  note: str, user: str | None, rows_added: int, keep_thresholds: bool = False) -> dict[str, Any]:
    """The child's metadata: bank size, training list, calibration, thresholds, history."""
    import copy

    meta = copy.deepcopy(model.metadata)
    for k in ("tensor_sha256", "format", "format_version"):
        meta.pop(k, None)
    training = meta.setdefault("training", {})
    files = list(model.training_files)
    training["files"] = files + records
    training["image_count"] = int(training.get("image_count") or len(files)) + len(records)
    old_scores = model.calibration_scores
    cal = meta.get("calibration", {})
    old_max = np.asarray(cal.get("map_maxima_values", []), dtype=np.float64)
    scores = np.concatenate([old_scores, np.asarray(h_scores, dtype=np.float64)])
    maxima = np.concatenate([old_max, np.asarray(h_max, dtype=np.float64)]) if old_max.size or not old_scores.size \
        else np.zeros(0)
    meta = _recalibrated(meta, scores, maxima, keep_thresholds)
    meta.setdefault("teach_history", []).append({
        "parent_sha256": _parent_sha(model),
        "taught": records,
        "user": user or current_user(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": note,
        "rows_added": int(rows_added),
        "thresholds": "kept" if keep_thresholds else "recalibrated",
    })
    return meta


@dataclass(frozen=True)
class Flip:
    """One image whose verdict changes between the parent and the taught model."""

    path: str
    old_score: float
    new_score: float
    old_verdict: str
    new_verdict: str
    truth: str  # "good", "defect", or "" when unknown


def flips(old_model: Any, new_model: Any, image_set: Any, *, cancel: threading.Event | None = None,
          progress: Callable[[int, int], None] | None = None,
          old_scores: np.ndarray | None = None) -> tuple[list[Flip], np.ndarray, np.ndarray]:
    """Score ``image_set`` (an ImageSet) with both models; the verdict changes and both score arrays.

    Each model's verdict uses its own thresholds (and review band). ``old_scores`` (the
    parent's scores of the same images, e.g. the window's run) saves re-scoring with the parent.
    """
    from .engine import iter_predict
    from .verdict import verdict

    def scores_of(m: Any, offset: int, total: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        out = None
        labels = None
        paths: list[str] = []
        done = 0
        for b in iter_predict(m, image_set, cancel=cancel):
            if out is None:
                n = len(image_set)
                out, labels, paths = np.full(n, np.nan), np.full(n, -1), [""] * n
            out[b.indices] = b.scores
            labels[b.indices] = b.labels
            for i, p in zip(b.indices, b.paths, strict=True):
                paths[int(i)] = p
            done += len(b.indices)
            if progress:
                progress(offset + done, total)
        if cancel is not None and cancel.is_set():
            raise CancelledError("re-scoring cancelled")
        if out is None:
            return np.zeros(0), [], np.zeros(0, dtype=np.int64)
        return out, paths, labels  # type: ignore[return-value]

    n = len(image_set)
    if old_scores is None:
        old, paths, labels = scores_of(old_model, 0, 2 * n)
        new, _, _ = scores_of(new_model, n, 2 * n)
    else:
        old = np.asarray(old_scores, dtype=np.float64)
        new, paths, labels = scores_of(new_model, 0, n)
    result = []
    for i in range(len(old)):
        a = verdict(old[i], old_model.image_threshold, old_model.review_from)
        b = verdict(new[i], new_model.image_threshold, new_model.review_from)
        if a != b:
            truth = "" if labels[i] < 0 else ("good" if labels[i] == 0 else "defect")
            result.append(Flip(paths[i], float(old[i]), float(new[i]), a, b, truth))
    return result, old, new
