"""What a report says: the facts of a run file gathered into a :class:`ReportContext`.

:func:`build_context` reads a run file (read-only) and, when heatmaps are wanted, the
run's model file; the writers (``report_html``, ``report_pdf``, ``report_csv``) lay the
context out and ``reports/report.py`` (:func:`write_report`) chooses the writer.
Verdicts follow ``core/verdict.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core import metrics
from ..core.drift import DriftResult, drift_of_run
from ..core.precision import recorded_precision
from ..core.run_file import RunFile, ThresholdChange, file_sha256
from ..core.verdict import verdict

Progress = Callable[[int, int], None]


class ReportError(Exception):
    """A report cannot be written; ``str()`` is one line for the user."""


class ReportCancelled(ReportError):
    """The export was cancelled; nothing was written."""


@dataclass(frozen=True)
class ReportItem:
    """One image as a report lists it."""

    index: int
    path: str
    display: str
    name: str
    score: float
    normalized: float
    verdict: str  # "OK", "REVIEW", "NG", "error" or "not scored"
    label: int
    defect_type: str
    operator: str
    operator_time: str
    operator_by: str
    error: str

    @property
    def truth(self) -> str:
        """Ground truth as a word: good, the defect type (or "defect"), or ""."""
        if self.label == 0:
            return "good"
        if self.label > 0:
            return self.defect_type or "defect"
        return ""


@dataclass
class ReportContext:
    """Everything a report says, gathered from the run file (and the model file)."""

    run_path: Path
    title: str
    created: str
    operator: str
    meta: dict[str, Any]
    threshold: float
    threshold_how: str
    pixel_threshold: float
    threshold_log: list[ThresholdChange]
    counts: dict[str, int]
    quality: dict[str, Any] | None
    scores: np.ndarray
    labels: np.ndarray
    items: list[ReportItem]
    selected: list[ReportItem]
    include_all: bool
    model: Any = None
    maps_note: str = ""
    evidence: bool = False  # add the nearest-normal evidence of each NG image (reports/report_evidence.py)
    store: RunFile | None = field(default=None, repr=False)
    #: The review band's start (REVIEW when review_from < score <= threshold); NaN: no band.
    review_from: float = float("nan")
    #: The images sent to review, listed apart from the flagged (NG) ones.
    review_items: list[ReportItem] = field(default_factory=list)

    @property
    def has_band(self) -> bool:
        """True when the run has a review band (its count and list are shown)."""
        return bool(np.isfinite(self.review_from))

    @property
    def band_line(self) -> str:
        """The review band in one sentence ("" without one)."""
        if not self.has_band:
            return ""
        line = (f"Review band: REVIEW when {self.review_from:.6g} < score <= {self.threshold:.6g} "
                f"(a person decides), OK at or below {self.review_from:.6g}.")
        if np.isfinite(self.threshold) and self.review_from > self.threshold:
            line += " The band's start lies above this threshold, so the band is empty."
        return line

    @property
    def drift(self) -> DriftResult:
        """This run's scores against its model's calibration scores (core/drift.py)."""
        return drift_of_run(self.meta, self.scores, self.labels)

    @property
    def drift_line(self) -> str:
        """The "Score drift" section's sentence: shifted or normal, with the figure."""
        d = self.drift
        if d.checked:
            return f"{'Shifted' if d.shifted else 'Normal'}: {d.message()}."
        return d.figure()[:1].upper() + d.figure()[1:] + "."

    @property
    def review_line(self) -> str:
        """One sentence counting operator verdicts (over all images, not only those shown)."""
        done = [it for it in self.items if it.operator in ("OK", "NG")]
        if not done:
            return "Operator review: no image reviewed."
        ok = sum(1 for it in done if it.operator == "OK")
        disagree = sum(1 for it in done if it.verdict in ("OK", "NG") and it.verdict != it.operator)
        return (f"Operator review: {len(done)} of {len(self.items)} images reviewed "
                f"({ok} confirmed OK, {len(done) - ok} confirmed NG; {disagree} disagree with the "
                f"automatic verdict at this threshold), {len(self.items) - len(done)} not reviewed.")

    @property
    def model_file(self) -> str:
        return Path(self.meta.get("model_path", "")).name

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.meta.get("model_summary", {}))

    def facts_model(self) -> list[tuple[str, str]]:
        """(label, value) rows describing the model."""
        s, md = self.summary, self.meta.get("model_metadata", {})
        cal = md.get("calibration", {})
        return [
            ("Model file", self.model_file),
            ("SHA-256", self.meta.get("model_sha256", "") or "unknown"),
            ("Backbone", f"{s.get('backbone', '?')} ({', '.join(s.get('layers', []))})"),
            ("Input", s.get("coverage") or f"resize {s.get('resize', '?')} px, centre crop {s.get('crop', '?')} px"),
            ("Memory bank", f"{s.get('bank_rows', '?')} x {s.get('feature_dim', '?')} "
                            f"(coreset {s.get('coreset_fraction', '?')}, k = {s.get('k', '?')})"),
            ("Training images", f"{s.get('training_images', '?')} good images"
                                + (f", {cal.get('holdout_images')} held out for calibration"
                                   if cal.get("holdout_images") else "")),
            ("Trained", when(str(s.get("created", ""))) or "?"),
        ]

    def facts_run(self) -> list[tuple[str, str]]:
        """(label, value) rows describing the run."""
        st, sw = self.meta.get("settings", {}), self.meta.get("software", {})
        status = self.meta.get("status", "?")
        if self.meta.get("status_message"):
            status += f" ({self.meta['status_message']})"
        resumed = sum(1 for x in self.meta.get("sessions", []) if x.get("resume"))
        return [
            ("Run file", self.run_path.name),
            ("Images from", str(self.meta.get("folder", ""))),
            ("Started", when(str(self.meta.get("created", "")))),
            ("Status", status + (f", resumed {resumed} time(s)" if resumed else "")),
            ("Device", f"{st.get('device', '?')}, batch size {st.get('batch_size', '?')}, "
                       f"{st.get('num_workers', 0)} loader workers"),
            ("Precision", precision_text(st.get("precision"))),
            ("Software", ", ".join(f"{k} {v}" for k, v in sw.items())),
        ]


#: What each resolved precision computes, for the reports' run facts.
PRECISION_TEXT = {
    "exact": "exact (float32, the official code's scores)",
    "fast": "fast (reduced search, exact float32 re-scoring; scores within 1 % of exact)",
    "half": "half (fast with a bfloat16 backbone on the CPU, float16 on CUDA; scores move more)",
}


def precision_text(value: object) -> str:
    """A run's recorded precision in words; old names (fp32, bf16) read as exact and fast."""
    name = recorded_precision(value)
    if name:
        return PRECISION_TEXT[name]
    return "not recorded" if not value else str(value)


def verdict_of(score: float, threshold: float, done: bool, error: bool, review_from: float = float("nan")) -> str:
    """The app's rule as a word (``core/verdict.py``): NG above the threshold, REVIEW in the band."""
    if not done:
        return "not scored"
    if error or not np.isfinite(score):
        return "error"
    if not np.isfinite(threshold):
        return "no threshold"
    return verdict(score, threshold, review_from)


def when(iso: str) -> str:
    """An ISO 8601 time as "2026-11-27 08:08:16 UTC" (as given when it does not parse)."""
    try:
        t = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    return t.strftime("%Y-%m-%d %H:%M:%S ") + (t.tzname() or "").replace("UTC+00:00", "UTC")


def _how(meta: dict[str, Any], log: list[ThresholdChange], override: float | None, run_t: float,
         given_by: str = "--threshold") -> str:
    """How the report's threshold was set, in one or two sentences."""
    s = meta.get("model_summary", {})
    model_t = s.get("image_threshold")
    model_t = float("nan") if model_t is None else float(model_t)
    source = meta.get("threshold_source", "")
    rule = meta.get("threshold_rule", "") or s.get("threshold_rule", "")
    base = {"calibration": "came from calibration on good training images: " + rule,
            "manual": "was set by hand in the model file: " + rule}.get(
        source, "is not set in the model file" + (f" ({rule})" if rule else ""))
    image_log = [c for c in log if c.kind == "image"]
    if override is not None:
        return f"Given for this report ({given_by}); the run's threshold is {run_t:.6g}."
    if image_log:
        last = image_log[-1]
        return (f"Changed during review on {when(last.time)} from {last.old:.6g}"
                + (f" ({last.note})" if last.note else "") + f". The model's threshold {model_t:.6g} {base}.")
    return f"The model's threshold {base}."


def _load_model(meta: dict[str, Any], model_path: str | os.PathLike[str] | None) -> tuple[Any, str]:
    """The run's model (CPU), or None and the reason the heatmaps are left out."""
    path = Path(model_path or meta.get("model_path", ""))
    if not path.name or not path.is_file():
        return None, f"Heatmaps omitted: the model file {path.name or '(none)'} was not found at {path}."
    want = meta.get("model_sha256", "")
    if want and file_sha256(path) != want:
        return None, f"Heatmaps omitted: the model file {path.name} has changed since the run (SHA-256 differs)."
    from ..core.model import PatchCoreModel
    from ..core.modelfile import ModelFileError

    try:
        return PatchCoreModel.load(path, device="cpu"), ""
    except (ModelFileError, OSError, ValueError) as exc:
        return None, f"Heatmaps omitted: the model file cannot be loaded ({exc})."


def build_context(
    run: str | os.PathLike[str] | RunFile,
    *,
    include_all: bool = False,
    operator: str = "",
    threshold: float | None = None,
    model_path: str | os.PathLike[str] | None = None,
    need_maps: bool = True,
    threshold_given_by: str = "--threshold",
) -> ReportContext:
    """Read a run file (read-only) into a :class:`ReportContext`; the caller closes ``ctx.store``.

    ``threshold_given_by`` names where a given ``threshold`` came from (the window names itself).
    """
    store = run if isinstance(run, RunFile) else RunFile.open(run, readonly=True)
    meta = store.meta
    cols = store.columns()
    run_t = store.image_threshold
    thr = float(threshold) if threshold is not None else run_t
    rf = store.review_from
    paths, shown, errs, types = store.paths(), store.display_names(), store.errors(), store.defect_types()
    ops = store.operator_verdicts()
    root = str(meta.get("folder", ""))
    items: list[ReportItem] = []
    for i in range(len(paths)):
        s = float(cols["score"][i])
        try:
            name = os.path.relpath(shown[i], root) if root else Path(shown[i]).name
        except ValueError:
            name = Path(shown[i]).name
        if name.startswith(".."):
            name = Path(shown[i]).name
        op = ops.get(i, ("", "", ""))
        items.append(ReportItem(
            index=i, path=paths[i], display=shown[i], name=name, score=s,
            normalized=s / thr if np.isfinite(thr) and thr > 0 and np.isfinite(s) else float("nan"),
            verdict=verdict_of(s, thr, bool(cols["done"][i]), bool(cols["error"][i]), rf),
            label=int(cols["label"][i]), defect_type=types[i], operator=op[0], operator_time=op[1],
            operator_by=op[2], error=errs.get(i, ""),
        ))
    words = [it.verdict for it in items]
    counts = {"total": len(items), "OK": words.count("OK"), "REVIEW": words.count("REVIEW"), "NG": words.count("NG"),
              "error": words.count("error"), "not scored": words.count("not scored")}
    scored = cols["done"] & ~cols["error"] & np.isfinite(cols["score"])
    quality = None
    lab = cols["label"][scored]
    if np.any(lab >= 0) and np.isfinite(thr):
        sc = cols["score"][scored]
        c = metrics.confusion(sc, lab, thr)
        p, r, f1 = metrics.precision_recall_f1(sc, lab, thr)
        quality = {"confusion": c, "auroc": metrics.auroc(sc, lab), "precision": p, "recall": r, "f1": f1,
                   "labelled": int(np.count_nonzero(lab >= 0)),
                   "review": metrics.review_counts(sc, lab, thr, rf) if np.isfinite(rf) else None}
    selected = items if include_all else [it for it in items if it.verdict == "NG"]
    review_items = [it for it in items if it.verdict == "REVIEW"]
    model, note = (None, "")
    if need_maps and any(it.verdict in ("OK", "REVIEW", "NG", "no threshold") for it in [*selected, *review_items]):
        model, note = _load_model(meta, model_path)
    pixel_t = store.pixel_threshold
    if model is not None and not (np.isfinite(pixel_t) and pixel_t > 0):
        if np.isfinite(thr) and thr > 0:
            pixel_t = thr  # maps peak near the image score; the image threshold is the closest anchor
        else:
            model, note = None, "Heatmaps omitted: the run has no threshold to anchor the colour scale to."
    return ReportContext(
        run_path=Path(store.path), title="PatchCore inspection report",
        created=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        operator=operator, meta=meta, threshold=thr, threshold_how=_how(meta, store.threshold_log(), threshold, run_t, threshold_given_by),
        pixel_threshold=pixel_t, threshold_log=store.threshold_log(), counts=counts, quality=quality,
        scores=cols["score"], labels=cols["label"], items=items, selected=selected,
        include_all=include_all, model=model, maps_note=note, store=store, review_from=rf, review_items=review_items,
    )
