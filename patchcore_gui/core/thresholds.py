"""Changing a model's thresholds: checks, new metadata with the new values, a history entry.

The model file keeps every change (when, who, old -> new for each value changed, note)
in ``threshold.history`` so a quality record can say how the thresholds in use came
about. Works on the metadata dict only, so the model module uses it without an import
cycle; ``check_thresholds`` is the one rule the command line and the window's fields share.
"""

from __future__ import annotations

import copy
import getpass
import math
from datetime import UTC, datetime
from typing import Any

#: The values a threshold change may set, in the order they are reported.
THRESHOLD_KEYS = ("image", "review_from", "pixel")


def _bad_number(value: float) -> bool:
    return not math.isfinite(value) or value < 0


def check_thresholds(image: float | None, review_from: float | None = None, pixel: float | None = None) -> None:
    """Refuse thresholds no model can use; raises ValueError with a one-line message.

    Scores are squared distances, so every threshold is a finite number >= 0. None means
    "not being set" (not checked); a NaN ``review_from`` turns the review band off. The
    review band's start may not lie above the image threshold (OK up to ``review_from``,
    REVIEW up to ``image``, NG above).
    """
    if image is not None and _bad_number(float(image)):
        raise ValueError(f"image threshold must be a finite number >= 0, got {image}")
    if pixel is not None and _bad_number(float(pixel)):
        raise ValueError(f"pixel threshold must be a finite number >= 0, got {pixel}")
    if review_from is None or math.isnan(float(review_from)):
        return
    if _bad_number(float(review_from)):
        raise ValueError(f"review start must be a finite number >= 0, got {review_from}")
    if image is not None and math.isfinite(float(image)) and float(review_from) > float(image):
        raise ValueError(f"review start {review_from:g} lies above the image threshold {float(image):g}")


def current_user() -> str:
    """Who changes a threshold, for the history: the login name, or "unknown"."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no login name in containers/services: KeyError, OSError
        return "unknown"


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN (an unset review band stays unset)."""
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return fa == fb or (math.isnan(fa) and math.isnan(fb))


def metadata_with_threshold(
    metadata: dict[str, Any],
    image_threshold: float | None,
    note: str = "",
    pixel_threshold: float | None = None,
    *,
    review_from: float | None = None,
    user: str | None = None,
    rule: str | None = None,
    source: str = "manual",
) -> dict[str, Any]:
    """A deep copy of a model's ``metadata`` carrying new thresholds and a history entry.

    None leaves a value as it is; a NaN ``review_from`` turns the review band off. The
    entry records the time, ``user`` (default: the login name), ``old_<key>`` and
    ``<key>`` for the image threshold (always) and each other value that changed, and the
    note. ``rule`` replaces the stated rule (default: the note, or "set by hand").
    """
    meta = copy.deepcopy(metadata)
    th = meta.setdefault("threshold", {})
    new = {"image": image_threshold, "review_from": review_from, "pixel": pixel_threshold}
    check_thresholds(
        th.get("image") if image_threshold is None else image_threshold,
        th.get("review_from") if review_from is None else review_from,
        pixel_threshold,
    )
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": user if user is not None else current_user(),
    }
    for key in THRESHOLD_KEYS:
        value = new[key]
        if value is None:
            continue
        old = th.get(key, float("nan"))
        if key == "image" or not _same(old, value):
            entry[f"old_{key}"] = old
            entry[key] = float(value)
        th[key] = float(value)
    entry["note"] = note
    th.setdefault("history", []).append(entry)
    th["source"] = source
    th["rule"] = rule or note or "set by hand"
    return meta


def history_lines(metadata: dict[str, Any], last: int = 3) -> list[str]:
    """The last ``last`` history entries as "TIME USER: image 1 -> 2, pixel 3 -> 4 (note)"."""
    out = []
    for e in metadata.get("threshold", {}).get("history", [])[-last:]:
        changes = ", ".join(
            f"{key.replace('_', ' ')} {format_value(e.get('old_' + key))} -> {format_value(e[key])}"
            for key in THRESHOLD_KEYS if key in e
        )
        note = f" ({e['note']})" if e.get("note") else ""
        out.append(f"{e.get('time', '?')} {e.get('user', 'unknown')}: {changes or 'no change'}{note}")
    return out


def threshold_summary(metadata: dict[str, Any]) -> dict[str, Any]:
    """How the thresholds were set, for ``info`` and the model card: the rule text, the
    rate and the number of calibration scores behind it, the review band, the last changes."""
    th = metadata.get("threshold", {})
    cal = metadata.get("calibration", {})
    method = cal.get("method") or ("held-out" if cal.get("holdout_images") else "none")
    return {
        "threshold_rule": th.get("rule", ""),
        "threshold_source": th.get("source", ""),
        "false_reject_rate": th.get("false_reject_rate"),
        "review_from": float(th.get("review_from", float("nan"))),
        "review_rate": th.get("review_rate"),
        "calibration_method": method,
        "calibration_count": len(cal.get("scores", [])),
        "threshold_history": history_lines(metadata, 3),
    }


def format_value(v: Any) -> str:
    """A threshold value for people: 6 significant digits, "none" for NaN or a missing value."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "none"
    return "none" if math.isnan(f) else f"{f:.6g}"
