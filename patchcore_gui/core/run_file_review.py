"""The run file's quality-review records: its thresholds, their change log, operators' verdicts.

``RunFile`` (``core/run_file.py``) inherits these methods; they use its meta cache,
transaction and query helpers. Thresholds are checked with ``core/thresholds.check_thresholds``
before anything is written: a value it refuses raises ValueError and logs nothing.
"""

from __future__ import annotations

import math
import sqlite3
from typing import TYPE_CHECKING, Any

from .run_file_format import THRESHOLD_KINDS, VERDICTS, ThresholdChange, nan_none, none_nan, now_iso
from .thresholds import check_thresholds

if TYPE_CHECKING:
    from collections.abc import Iterable

    from . import run_file_lock


class RunFileReview:
    """Thresholds, threshold log and operator verdicts of a run file (a ``RunFile`` base)."""

    _conn: sqlite3.Connection
    _meta: dict[str, Any]

    if TYPE_CHECKING:  # provided by RunFile
        def _write(self) -> run_file_lock.Transaction: ...
        def _set_meta(self, **values: Any) -> None: ...
        def _reload_meta(self) -> None: ...
        def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]: ...

    @property
    def image_threshold(self) -> float:
        self._reload_meta()
        return none_nan(self._meta.get("image_threshold"))

    @property
    def pixel_threshold(self) -> float:
        self._reload_meta()
        return none_nan(self._meta.get("pixel_threshold"))

    @property
    def review_from(self) -> float:
        """The run's review-band start (REVIEW above it, up to the image threshold); NaN: no band.

        Run files made before the band read as NaN.
        """
        self._reload_meta()
        return none_nan(self._meta.get("review_from"))

    def set_threshold(self, new: float, note: str = "", kind: str = "image") -> ThresholdChange:
        """Set the run's image (or pixel) threshold or review start ("review"; NaN: band off),
        logging old, new, time and note."""
        old = {"image": self.image_threshold, "pixel": self.pixel_threshold, "review": self.review_from}.get(
            kind, float("nan"))
        return self.log_threshold(old, new, note, kind)

    def log_threshold(self, old: float, new: float, note: str = "", kind: str = "image") -> ThresholdChange:
        """Log a threshold change made elsewhere (e.g. a GUI slider) and make ``new`` current.

        ``kind`` "review" is the review band's start (NaN turns the band off). Values
        ``check_thresholds`` refuses (negative, infinite, a review start above the image
        threshold) raise ValueError and log nothing.
        """
        if kind not in THRESHOLD_KINDS:
            raise ValueError(f"threshold kind must be one of {THRESHOLD_KINDS}, got {kind!r}")
        new = float(new)
        if kind == "review":
            image = self.image_threshold
            check_thresholds(None if math.isnan(image) else image, new)
        elif not math.isnan(new):  # NaN: the threshold cleared
            if kind == "image":
                check_thresholds(new, self.review_from)
            else:
                check_thresholds(None, pixel=new)
        change = ThresholdChange(now_iso(), kind, float(old), float(new), note)
        key = "review_from" if kind == "review" else f"{kind}_threshold"
        with self._write():
            self._conn.execute(
                "INSERT INTO threshold_log (time, kind, old, new, note) VALUES (?, ?, ?, ?, ?)",
                (change.time, kind, nan_none(old), nan_none(new), note),
            )
            self._set_meta(**{key: nan_none(new)})
        return change

    def threshold_log(self) -> list[ThresholdChange]:
        """Every threshold change, oldest first."""
        rows = self._query("SELECT time, kind, old, new, note FROM threshold_log ORDER BY id")
        return [ThresholdChange(t, k, none_nan(o), none_nan(n), note) for t, k, o, n, note in rows]

    def set_operator_verdict(self, index: int, verdict: str, operator: str = "") -> None:
        """Record an operator's verdict on one image: "OK", "NG" or "" (cleared), with the time."""
        if verdict not in VERDICTS:
            raise ValueError(f"operator verdict must be one of {VERDICTS}, got {verdict!r}")
        with self._write():
            cur = self._conn.execute(
                "UPDATE images SET verdict = ?, verdict_time = ?, verdict_by = ? WHERE idx = ?",
                (verdict, now_iso() if verdict else None, operator if verdict else "", int(index)),
            )
            if cur.rowcount != 1:
                raise IndexError(f"no image with index {index} in this run")

    def operator_verdicts(self) -> dict[int, tuple[str, str, str]]:
        """index -> (verdict, time, operator) for images with an operator verdict."""
        rows = self._query("SELECT idx, verdict, verdict_time, verdict_by FROM images WHERE verdict != ''")
        return {int(i): (v, t or "", b) for i, v, t, b in rows}
