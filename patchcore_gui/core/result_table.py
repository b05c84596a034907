"""The results of one run as numpy columns, for the window (no Qt here).

One slot per image of the folder, filled as batches arrive. Everything the table,
the histogram and the metrics need is a vectorised expression over these columns, so
moving the threshold over 100k results costs a few milliseconds. Per image we keep
only the patch-score grid (float16, ~1.5 kB at 28 x 28); full-resolution maps are
rebuilt for the image on screen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, overload

import numpy as np

from .datasets import ImageSet
from .path_list import path_strings
from .verdict import CODE_NG, CODE_NONE, CODE_OK, CODE_REVIEW, ng_mask, verdict_codes
from .verdict import review_mask as band_mask  # not ResultTable.review_mask (the operator's review)

#: Verdict codes of the table (integers, unlike ``verdict.OK`` / ``verdict.NG``, the words):
#: ``verdict.verdict_codes``'s, with ERROR for its "no verdict" and PENDING for not scored yet.
OK, NG, ERROR, PENDING, REVIEW = CODE_OK, CODE_NG, CODE_NONE, 3, CODE_REVIEW
VERDICT_WORDS = {OK: "OK", NG: "NG", ERROR: "error", PENDING: "…", REVIEW: "REVIEW"}
#: Sort rank of each code (index = code): OK < REVIEW < NG < error < pending.
VERDICT_RANK = np.array([0, 2, 3, 4, 1], dtype=np.int8)

#: Table filters ("review": the review band, REVIEW verdicts).
FILTERS = ("all", "ng", "ok", "review", "errors", "fp", "fn")

#: Operator review codes (the run file's ``columns()["operator"]``) and their words.
OP_NONE, OP_OK, OP_NG = 0, 1, 2
OPERATOR_WORDS = {OP_NONE: "", OP_OK: "OK", OP_NG: "NG"}
#: Review filters, combined with ``FILTERS`` and the search.
REVIEW_FILTERS = ("any", "unreviewed", "reviewed", "op_ok", "op_ng")


class ResultTable:
    """Scores, grids, errors and ground truth of the images of one folder."""

    def __init__(self, image_set: ImageSet) -> None:
        self.image_set = image_set
        n = len(image_set.paths)
        self.size = n
        # A run file's PathList hands over its strings as they are: no Path, no copy.
        self.paths: list[str] = path_strings(image_set.paths)
        #: Names relative to the images' common folder, made per row when asked.
        self.names: Sequence[str] = NameList(self.paths)
        self._names_lower: list[str] | None = None
        self._name_rank: np.ndarray | None = None
        self.labels = np.asarray(image_set.labels, dtype=np.int8)
        # Asked on every threshold move; the labels come with the folder and stay.
        self._has_labels = bool(np.any(self.labels >= 0))
        self.types: list[str] = list(image_set.defect_types)
        # Not copied into a list: a run file's OptionalPathList makes a Path per item asked.
        self.mask_paths: Sequence[Path | None] = image_set.mask_paths
        self.scores = np.full(n, np.nan, dtype=np.float32)
        self.done = np.zeros(n, dtype=bool)
        self.errors: dict[int, str] = {}
        #: The operator's verdict per image (OP_NONE / OP_OK / OP_NG).
        self.operator = np.zeros(n, dtype=np.int8)
        self.grids: np.ndarray | None = None
        #: Image indices in arrival order; ``order[:count]`` are the scored ones.
        self.order = np.empty(n, dtype=np.int64)
        self.count = 0
        #: A run opened from its file reads a row's grid on demand (``restore``'s
        #: ``grid_loader``): a million-row run then neither waits for nor holds 1.5 GB of
        #: grids. ``_lazy`` marks the rows restored that way.
        self.grid_loader: Callable[[int], np.ndarray | None] | None = None
        self._lazy: np.ndarray | None = None
        #: Bumped whenever rows arrive: keys the scored columns kept for threshold moves.
        self.version = 0
        self._scored: _Scored | None = None
        #: Truth sort key: good < each defect type (alphabetical) < unknown.
        self.truth_rank = _truth_rank(self.types, self.labels)

    @property
    def names_lower(self) -> list[str]:
        """Lower-case names for the search, made on the first search."""
        if self._names_lower is None:
            self._names_lower = [s.lower() for s in self.names]
        return self._names_lower

    @property
    def name_rank(self) -> np.ndarray:
        """Rank of each name in sorted (case-insensitive) order: sorting by name is then an
        int argsort. Made on the first sort by name (~1.3 s at 1,000,000 rows), not at open."""
        if self._name_rank is None:
            low = self.names_lower
            rank = np.empty(self.size, dtype=np.int64)
            # Python's (stable) sort on the strings: 2.5 x faster than numpy's object argsort,
            # and no fixed-width copy ('U' dtype: 4 bytes x the longest name, per row).
            rank[np.array(sorted(range(self.size), key=low.__getitem__), dtype=np.int64)] = np.arange(self.size)
            self._name_rank = rank
        return self._name_rank

    # ------------------------------------------------------------------ filling
    @property
    def has_labels(self) -> bool:
        """True when at least one image has a known good/defect label."""
        return self._has_labels

    def add(self, indices: np.ndarray, scores: np.ndarray, grids: np.ndarray, errors: list[str]) -> None:
        """Store one batch (indices into the folder's image list)."""
        idx = np.asarray(indices, dtype=np.int64)
        fresh = ~self.done[idx]
        if not fresh.any():
            return
        idx_new = idx[fresh]
        self.scores[idx_new] = np.asarray(scores, dtype=np.float32)[fresh]
        g = np.asarray(grids)
        if self.grids is None:
            # np.empty does not touch the pages; only rows that arrive take memory.
            self.grids = np.empty((self.size, *g.shape[1:]), dtype=np.float16)
        if g.shape[1:] == self.grids.shape[1:]:
            self.grids[idx_new] = g[fresh].astype(np.float16, copy=False)
        for i, e in zip(idx.tolist(), errors, strict=True):
            if e and not self.done[i]:
                self.errors[i] = e
        self.done[idx_new] = True
        k = len(idx_new)
        self.order[self.count : self.count + k] = idx_new
        self.count += k
        self.version += 1

    def restore(
        self,
        done: np.ndarray,
        scores: np.ndarray,
        errors: dict[int, str],
        operator: np.ndarray,
        grids: Iterable[tuple[int, np.ndarray | None]],
        grid_loader: Callable[[int], np.ndarray | None] | None = None,
    ) -> None:
        """Fill an empty store from a run file's columns (image index order = arrival order).

        ``grids``: (index, grid) pairs to hold in memory; or ``grid_loader(index)`` to read
        the restored rows' grids when asked (``grid``), holding none.
        """
        idx = np.flatnonzero(np.asarray(done, dtype=bool)).astype(np.int64)
        self.scores[idx] = np.asarray(scores, dtype=np.float32)[idx]
        self.done[idx] = True
        self.errors = {int(i): str(e) for i, e in errors.items()}
        self.operator[:] = np.asarray(operator, dtype=np.int8)
        self.order[: len(idx)] = idx
        self.count = len(idx)
        self.version += 1
        if grid_loader is not None:
            self.grid_loader, self._lazy = grid_loader, self.done.copy()
        for i, g in grids:
            if g is None:
                continue
            if self.grids is None:
                self.grids = np.empty((self.size, *g.shape), dtype=np.float16)
            if g.shape == self.grids.shape[1:]:
                self.grids[i] = g

    def truth(self, index: int) -> str:
        """Ground truth as shown: "good", the defect type, or "" when unknown."""
        lab = int(self.labels[index])
        if lab < 0:
            return ""
        return "good" if lab == 0 else (self.types[index] or "defect")

    def grid(self, index: int) -> np.ndarray | None:
        """The patch-score grid of image ``index`` (float32), or None if not scored."""
        if self._lazy is not None and self._lazy[index] and self.grid_loader is not None:
            g = None if index in self.errors else self.grid_loader(index)
            return None if g is None else np.asarray(g, dtype=np.float32)
        if self.grids is None or not self.done[index] or index in self.errors:
            return None
        return self.grids[index].astype(np.float32)

    # ------------------------------------------------------------------ verdicts
    def verdicts(self, threshold: float, rows: np.ndarray | None = None,
                 review_from: float = float("nan"), *, scores: np.ndarray | None = None) -> np.ndarray:
        """Verdict code per image (or per ``rows``): ``verdict.verdict_codes`` (OK / REVIEW / NG,
        NaN an error), PENDING where not scored yet. ``review_from`` NaN: no band.
        ``scores``: the rows' scores when the caller has them gathered already."""
        if scores is None:
            scores = self.scores if rows is None else self.scores[rows]
        code = verdict_codes(scores, threshold, review_from)
        done = self.done if rows is None else self.done[rows]
        code[~done] = PENDING
        return code

    def counts(self, threshold: float, review_from: float = float("nan")) -> dict[str, int]:
        """OK / REVIEW / NG / error counts over the scored images."""
        c = self._scored_columns()
        s = c.scores64
        ng = int(np.count_nonzero(ng_mask(s, threshold)))
        # Counted from the masks (no code array): this runs on every threshold move.
        review = int(np.count_nonzero(band_mask(s, threshold, review_from))) if not np.isnan(review_from) else 0
        return {"ok": len(s) - c.errors - ng - review, "review": review, "ng": ng, "error": c.errors,
                "total": len(s)}

    def filter_mask(self, rows: np.ndarray, kind: str, threshold: float,
                    review_from: float = float("nan"), *, scores: np.ndarray | None = None,
                    labels: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over ``rows`` (image indices) for one of ``FILTERS``.

        With a review band, "ok" is OK only (REVIEW has its own filter), "fn" defects
        judged OK (those sent to review are not missed) and "fp" good images judged NG.
        ``scores`` / ``labels``: the rows' columns when the caller keeps them gathered
        (the table model does, per sort order: a threshold move then gathers nothing).
        """
        if kind == "all":
            return np.ones(len(rows), dtype=bool)
        s = self.scores[rows] if scores is None else scores
        # NG and REVIEW straight from their masks (a row not scored yet has a NaN score:
        # neither); these filters follow every threshold move.
        if kind == "ng":
            return ng_mask(s, threshold)
        if kind == "review":
            return band_mask(s, threshold, review_from)
        lab = self.labels[rows] if labels is None else labels
        if kind == "fp":
            return ng_mask(s, threshold) & (lab == 0)
        code = self.verdicts(threshold, rows, review_from, scores=s)
        if kind == "ok":
            return code == OK
        if kind == "errors":
            return code == ERROR
        if kind == "fn":
            return (code == OK) & (lab > 0)
        raise ValueError(f"unknown filter {kind!r}; use one of {FILTERS}")

    def review_mask(self, rows: np.ndarray, kind: str) -> np.ndarray:
        """Boolean mask over ``rows`` for one of ``REVIEW_FILTERS``."""
        op = self.operator[rows]
        if kind == "any":
            return np.ones(len(rows), dtype=bool)
        if kind == "unreviewed":
            return op == OP_NONE
        if kind == "reviewed":
            return op != OP_NONE
        if kind == "op_ok":
            return op == OP_OK
        if kind == "op_ng":
            return op == OP_NG
        raise ValueError(f"unknown review filter {kind!r}; use one of {REVIEW_FILTERS}")

    def search_mask(self, text: str) -> np.ndarray | None:
        """Mask over all images whose relative name contains ``text`` (None: no search)."""
        t = text.strip().lower()
        if not t:
            return None
        return np.fromiter((t in n for n in self.names_lower), dtype=bool, count=self.size)

    def scored(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores and labels of the images scored so far (error rows included as NaN), read-only."""
        c = self._scored_columns()
        return c.scores, c.labels

    def finite_score_range(self) -> tuple[float, float] | None:
        """Smallest and largest finite score scored so far (None: none)."""
        return self._scored_columns().extent

    def _scored_columns(self) -> _Scored:
        """The scored images' columns, kept until rows arrive: every threshold move reads
        them (counts, the number columns' width) and gathering 1,000,000 rows by arrival
        order costs ~3 ms each time."""
        c = self._scored
        if c is None or c.version != self.version:
            rows = self.order[: self.count]
            scores, labels = self.scores[rows], self.labels[rows]
            # float64 once: ``verdict.ng_mask`` compares in float64 and would convert per call.
            scores64 = scores.astype(np.float64)
            finite = scores[np.isfinite(scores)]
            extent = (float(finite.min()), float(finite.max())) if len(finite) else None
            for a in (scores, labels, scores64):
                a.flags.writeable = False  # shared by every caller
            c = self._scored = _Scored(self.version, scores, labels, scores64,
                                       int(np.count_nonzero(np.isnan(scores))), extent)
        return c


class _Scored(NamedTuple):
    """``ResultTable._scored_columns``: the scored rows' columns at one ``version``."""

    version: int
    scores: np.ndarray
    labels: np.ndarray
    scores64: np.ndarray
    errors: int
    extent: tuple[float, float] | None


class NameList(Sequence[str]):
    """Paths shown relative to their common folder ("crack/000.png"), sliced per item asked.

    Plain string slicing (``Path.relative_to`` took ~1 s for 100k paths), and only for the
    rows shown, searched or exported: a 1,000,000-row run opens without making a name.
    """

    __slots__ = ("_cut", "_paths")

    def __init__(self, paths: list[str]) -> None:
        self._paths = paths
        # The common prefix of the smallest and largest string is that of all of them;
        # cut back to a folder boundary.
        prefix = os.path.commonprefix([min(paths), max(paths)]) if paths else ""
        self._cut = prefix.rfind(os.sep) + 1

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._name(p) for p in self._paths[i]]
        return self._name(self._paths[i])

    def __iter__(self) -> Iterator[str]:
        return map(self._name, self._paths)

    def _name(self, path: str) -> str:
        name = path[self._cut:]
        return name.replace(os.sep, "/") if os.sep != "/" else name


def _truth_rank(types: list[str], labels: np.ndarray) -> np.ndarray:
    """Truth sort key per image: 0 good, 1.. each defect type in alphabetical order, then unknown.

    Vectorised over a code per distinct type (a dict lookup per row, in C): the per-row
    Python expression took ~0.5 s at 1,000,000 rows.
    """
    n = len(types)
    distinct = list(dict.fromkeys(types))
    code = np.fromiter(map({t: k for k, t in enumerate(distinct)}.__getitem__, types), dtype=np.int64, count=n)
    defect = labels > 0
    kinds = sorted({distinct[k] for k in np.unique(code[defect]).tolist()})
    rank = {t: i + 1 for i, t in enumerate(kinds)}
    rank_of_code = np.array([rank.get(t, len(kinds) + 1) for t in distinct] or [0], dtype=np.int64)
    out = np.full(n, len(kinds) + 2, dtype=np.int64)  # unknown
    out[labels == 0] = 0
    out[defect] = rank_of_code[code[defect]]
    return out
