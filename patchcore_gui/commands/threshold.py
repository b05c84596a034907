"""``patchcore threshold MODEL``: set a model's thresholds in its file, with a history entry.

Values are given directly (``--image``, ``--review-from``, ``--pixel``) or as rates of good
parts estimated from the model's calibration scores (``--false-reject``, ``--review-rate``).
The file is rewritten atomically in place (same tensors, new metadata); any bad value is
one line on standard error, exit 2, and the file is left untouched.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .common import EXIT_OK, CliError

#: The option texts that turn the review band off.
_OFF = ("none", "off")


def register(subparsers: Any) -> None:
    """Add the ``threshold`` sub-command."""
    t = subparsers.add_parser(
        "threshold", help="set a model's image, review and pixel thresholds (history kept in the file)",
        description="Rewrites MODEL in place (atomically) with new thresholds and a history entry "
                    "(time, user, old -> new, note). Rates are estimated from the model's calibration "
                    "scores (one out-of-bank score per training image).")
    t.add_argument("model")
    t.add_argument("--image", metavar="VALUE", help="image threshold (NG when score > VALUE)")
    t.add_argument("--false-reject", metavar="RATE",
                   help="set the image threshold so that RATE of good parts are rejected (0 < RATE < 1)")
    t.add_argument("--review-from", metavar="VALUE",
                   help="start of the review band (REVIEW when VALUE < score <= threshold); none: no band")
    t.add_argument("--review-rate", metavar="RATE", help="start the review band so that RATE of good parts go to review")
    t.add_argument("--pixel", metavar="VALUE", help="pixel threshold (the defect contour on anomaly maps)")
    t.add_argument("--note", default="", help="why: kept in the threshold history")
    t.set_defaults(func=handler)


def _number(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CliError(f"{option} must be a number, got {text!r}") from None


def _rate(option: str, text: str | None) -> float | None:
    v = _number(option, text)
    if v is not None and not 0.0 < v < 1.0:  # NaN fails too
        raise CliError(f"{option} must lie strictly between 0 and 1, got {text}")
    return v


def _review_value(text: str | None) -> float | None:
    if text is not None and text.strip().lower() in _OFF:
        return math.nan
    return _number("--review-from", text)


def new_thresholds(meta: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Any]]:
    """The values to set ({key: value}) and the metadata_with_threshold keywords (rule, source)."""
    from ..core.calibration import rate_estimate, rate_rule, review_for_rate

    image, rate = _number("--image", args.image), _rate("--false-reject", args.false_reject)
    review, review_rate = _review_value(args.review_from), _rate("--review-rate", args.review_rate)
    pixel = _number("--pixel", args.pixel)
    if image is not None and rate is not None:
        raise CliError("give --image or --false-reject, not both")
    if review is not None and review_rate is not None:
        raise CliError("give --review-from or --review-rate, not both")
    if all(v is None for v in (image, rate, review, review_rate, pixel)):
        raise CliError("nothing to change: give --image, --false-reject, --review-from, --review-rate or --pixel")
    cal = meta.get("calibration", {}) if isinstance(meta.get("calibration"), dict) else {}
    scores = [s for s in cal.get("scores", []) if isinstance(s, (int, float)) and math.isfinite(s)]
    if (rate is not None or review_rate is not None) and not scores:
        raise CliError(f"{args.model} has no calibration scores (trained without calibration or imported): "
                       "give --image / --review-from values instead of rates")
    th = meta.get("threshold", {})
    kw: dict[str, Any] = {}
    rules = []
    if rate is not None:
        image, extrapolated = rate_estimate(scores, rate)
        rules.append("image: " + rate_rule(rate, len(scores), extrapolated))
        kw["source"] = "calibration"
    elif image is not None:
        rules.append(f"image: set by hand to {image:.6g}")
    current = float(th.get("image", math.nan)) if image is None else image
    if review_rate is not None:
        if not math.isfinite(current):
            raise CliError("--review-rate needs an image threshold: set --image or --false-reject first")
        review = review_for_rate(scores, current, review_rate)
        rules.append(f"review band: {review_rate * 100:.3g} % of good parts estimated from {len(scores)} "
                     "out-of-bank scores")
    values = {"image": image, "review_from": review, "pixel": pixel}
    from ..core.thresholds import check_thresholds

    band = th.get("review_from") if review is None else review
    if review is not None and not math.isnan(review) and not math.isfinite(current):
        raise CliError("a review band needs an image threshold: set --image or --false-reject too")
    try:
        check_thresholds(image if image is not None else (current if math.isfinite(current) else None), band, pixel)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    kw["rule"] = "; ".join([*rules, *([f"pixel: set by hand to {pixel:.6g}"] if pixel is not None else [])])
    if image is None:
        kw["rule"] = f"{th.get('rule', '')}; {kw['rule']}".strip("; ")  # the image rule stands
        kw["source"] = th.get("source", "manual")
    return {k: v for k, v in values.items() if v is not None}, {**kw, "false_reject": rate, "review_rate": review_rate}


def handler(args: argparse.Namespace) -> int:
    """Check everything, then rewrite the model file once; print old -> new per value."""
    from ..core.modelfile import read_model_file, save_model_file
    from ..core.thresholds import format_value, metadata_with_threshold

    tensors, meta = read_model_file(args.model)
    values, kw = new_thresholds(meta, args)
    rate, review_rate = kw.pop("false_reject"), kw.pop("review_rate")
    old = dict(meta.get("threshold", {}))
    try:
        new_meta = metadata_with_threshold(meta, values.get("image"), args.note, values.get("pixel"),
                                           review_from=values.get("review_from"), **kw)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    th = new_meta["threshold"]
    if rate is not None:
        th["false_reject_rate"] = rate  # what teaching re-applies when it extends the calibration
    elif "image" in values:
        th.pop("false_reject_rate", None)
    if review_rate is not None:
        th["review_rate"] = review_rate
    elif "review_from" in values:
        th.pop("review_rate", None)
    for key in ("tensor_sha256", "format", "format_version"):
        new_meta.pop(key, None)
    save_model_file(args.model, tensors, new_meta)
    names = {"image": "image threshold", "review_from": "review from", "pixel": "pixel threshold"}
    for key in ("image", "review_from", "pixel"):
        if key in values:
            print(f"{names[key]}: {format_value(old.get(key, math.nan))} -> {format_value(th[key])}")
    return EXIT_OK
