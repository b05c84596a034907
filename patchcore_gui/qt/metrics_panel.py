"""Ground-truth metrics: ROC with the operating point, confusion matrix, precision/recall/F1.

Shown only when the folder's layout gives labels. The ROC curve is recomputed when
results arrive (its drawn copy decimated); moving the threshold only moves the operating
point and recounts the confusion matrix (two binary searches in the scores sorted per
class when they arrive, microseconds at 100k images). With a review band the matrix
gains a REVIEW column (good and defective images a person checks); the counts at the
threshold (TP, FP, precision, recall, F1, the ROC point) are those without the band,
where a REVIEW image is on the OK side. The two buttons propose a
threshold (best F1, or a false-reject-rate limit on good images) and hand it to the
window, which applies it like any other threshold move.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from patchcore_gui.core import metrics
from patchcore_gui.core.verdict import count_ng, count_review

from . import style


def decimate_curve(x: np.ndarray, y: np.ndarray, resolution: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The points of a monotone curve in [0, 1]^2 that differ at ``resolution`` steps.

    The ROC has one point per distinct score (100k at 100k images); drawing them all
    made every threshold move repaint 100k segments (~20 ms). At most ~2 x
    ``resolution`` points remain, end points included, so the drawn curve is the same.
    """
    if len(x) <= 2 * resolution:
        return x, y
    key = np.round(x * resolution).astype(np.int64) * (resolution + 1) + np.round(y * resolution).astype(np.int64)
    keep = np.flatnonzero(np.diff(key, prepend=-1) != 0)
    keep = np.union1d(keep, [len(x) - 1])
    return x[keep], y[keep]


class MetricsPanel(QWidget):
    """Tabs "ROC" and "Confusion"; emits ``threshold_proposed`` from its buttons."""

    #: threshold value, one-line reason ("best F1 0.93").
    threshold_proposed = Signal(float, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scores = np.empty(0)
        self._labels = np.empty(0, dtype=np.int8)
        self.auroc = math.nan
        self.confusion: dict[str, int] = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
        #: Images sent to review per class ("good", "defect"); zeros without a band.
        self.review: dict[str, int] = {"good": 0, "defect": 0}
        self._review_from = math.nan
        self.prf = (0.0, 0.0, 0.0)
        self._good_sorted = self._defect_sorted = np.empty(0)
        #: Where the operating-point marker is drawn (None: not drawn).
        self._op: tuple[float, float] | None = None
        self._build()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        head = QHBoxLayout()
        title = QLabel("Ground truth")
        title.setObjectName("sectionTitle")
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("muted")
        self.summary_label.setWordWrap(True)
        head.addWidget(title)
        head.addStretch(1)
        lay.addLayout(head)
        lay.addWidget(self.summary_label)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.roc_plot = pg.PlotWidget()
        self.roc_plot.setBackground(style.BASE_BG)
        self.roc_plot.setMenuEnabled(False)
        self.roc_plot.setMouseEnabled(x=False, y=False)
        self.roc_plot.setLabel("bottom", "false positive rate (good rejected)")
        self.roc_plot.setLabel("left", "true positive rate")
        self.roc_plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.04)
        self.roc_plot.setAspectLocked(False)
        # No grid: translucent grid lines cost ~10 ms per repaint (software raster),
        # which would double the cost of a threshold move.
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen(style.MUTED_TEXT, width=1, style=Qt.PenStyle.DashLine))
        self.roc_curve = self.roc_plot.plot([], [], pen=pg.mkPen(style.BATCH_COLOR, width=2))
        self.op_point = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(style.THRESHOLD_COLOR), pen=pg.mkPen("w"))
        self.roc_plot.addItem(self.op_point)
        self.tabs.addTab(self.roc_plot, "ROC")

        self.tabs.addTab(self._build_confusion(), "Confusion")
        lay.addWidget(self.tabs, 1)

        brow = QHBoxLayout()
        self.best_f1_button = QPushButton("Best F1")
        self.best_f1_button.setToolTip("Threshold that maximises F1 on this labelled batch")
        self.best_f1_button.clicked.connect(self.propose_best_f1)
        self.frr_button = QPushButton("False reject ≤")
        self.frr_button.setToolTip("Lowest threshold rejecting at most this share of good images")
        self.frr_button.clicked.connect(self.propose_frr)
        self.frr_spin = QDoubleSpinBox()
        self.frr_spin.setRange(0.0, 100.0)
        self.frr_spin.setDecimals(1)
        self.frr_spin.setValue(1.0)
        self.frr_spin.setSuffix(" %")
        brow.addWidget(self.best_f1_button)
        brow.addStretch(1)
        brow.addWidget(self.frr_button)
        brow.addWidget(self.frr_spin)
        lay.addLayout(brow)

    def _build_confusion(self) -> QWidget:
        """The confusion matrix (truth x verdict) and the precision / recall / F1 line."""
        conf = QWidget()
        grid = QGridLayout(conf)
        grid.setSpacing(4)
        grid.addWidget(QLabel(""), 0, 0)
        self.review_header = QLabel("verdict REVIEW")
        for c, h in enumerate((QLabel("verdict OK"), self.review_header, QLabel("verdict NG")), start=1):
            h.setAlignment(Qt.AlignmentFlag.AlignCenter)
            h.setObjectName("muted")
            grid.addWidget(h, 0, c)
        self.cells: dict[str, QLabel] = {}
        tips = {"tn": "good accepted", "fp": "good rejected (false positive)", "fn": "defect missed (false negative)",
                "tp": "defect caught", "rg": "good image sent to review (counted OK at the threshold)",
                "rd": "defect sent to review (counted as missed at the threshold)"}
        layout_cells = (("truth good", "tn", "rg", "fp"), ("truth defect", "fn", "rd", "tp"))
        for r, (text, *keys) in enumerate(layout_cells, start=1):
            h = QLabel(text)
            h.setObjectName("muted")
            grid.addWidget(h, r, 0)
            for c, key in enumerate(keys, start=1):
                cell = QLabel("0")
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setMinimumHeight(46)
                tint = {"tn": style.OK_TINT, "tp": style.OK_TINT, "rg": style.REVIEW_TINT,
                        "rd": style.REVIEW_TINT}.get(key, style.NG_TINT)
                cell.setStyleSheet(
                    f"background: rgba({tint.red()},{tint.green()},{tint.blue()},{tint.alpha() + 30});"
                    "border-radius: 4px; font-size: 15px; font-weight: 600;"
                )
                cell.setToolTip(tips[key])
                grid.addWidget(cell, r, c)
                self.cells[key] = cell
        for w in (self.review_header, self.cells["rg"], self.cells["rd"]):
            w.setVisible(False)  # until a review band is on
        self.prf_label = QLabel("")
        grid.addWidget(self.prf_label, 3, 0, 1, 4)
        grid.setRowStretch(4, 1)
        return conf

    # ------------------------------------------------------------------ data
    def set_data(self, scores: np.ndarray, labels: np.ndarray, threshold: float,
                 review_from: float | None = None) -> None:
        """New results: recompute the ROC curve and AUROC, then the operating point."""
        self._scores = np.asarray(scores, dtype=np.float64)
        self._labels = np.asarray(labels)
        # The images ``metrics.confusion`` counts (known label, finite score), sorted per
        # class: a threshold move then counts them with two binary searches.
        y = np.asarray(self._labels, dtype=np.float64)
        known = ~np.isnan(self._scores) & (y >= 0)
        self._good_sorted = np.sort(self._scores[known & (y == 0)])
        self._defect_sorted = np.sort(self._scores[known & (y > 0)])
        fpr, tpr, _ = metrics.roc_curve(self._scores, self._labels)
        if np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr)):
            self.roc_curve.setData(*decimate_curve(fpr, tpr))
        else:
            self.roc_curve.setData([], [])
        self.auroc = metrics.auroc(self._scores, self._labels)
        self._op = ()  # not None: the marker is redrawn (removed when there is no data)
        self.set_threshold(threshold, review_from)

    def set_threshold(self, threshold: float, review_from: float | None = None) -> None:
        """Operating point, confusion matrix and P/R/F1 at ``threshold`` (NG by ``core.verdict``).

        The counts are ``metrics.confusion``'s and P/R/F1 ``metrics.precision_recall_f1``'s
        (a test holds them equal), taken from the sorted scores with ``verdict.count_ng``:
        ~10 us instead of ~2 ms of 100k comparisons on every threshold move. ``review_from``
        (None: unchanged, NaN: no band) fills the REVIEW column (``verdict.count_review``);
        the OK cells then show the images judged OK, the others being in the REVIEW column.
        """
        if review_from is not None:
            self._review_from = float(review_from)
            for w in (self.review_header, self.cells["rg"], self.cells["rd"]):
                w.setVisible(math.isfinite(self._review_from))
        good, defect = self._good_sorted, self._defect_sorted
        fp = count_ng(good, threshold)
        tp = count_ng(defect, threshold)
        c = {"tp": tp, "fp": fp, "tn": len(good) - fp, "fn": len(defect) - tp}
        self.confusion = c
        rv = {"good": count_review(good, threshold, self._review_from),
              "defect": count_review(defect, threshold, self._review_from)}
        self.review = rv
        shown = {**c, "tn": c["tn"] - rv["good"], "fn": c["fn"] - rv["defect"], "rg": rv["good"], "rd": rv["defect"]}
        for key, cell in self.cells.items():
            text = f"{shown[key]:,}"
            if cell.text() != text:
                cell.setText(text)
        self.prf = metrics.precision_recall_f1_counts(tp, fp, c["fn"])
        p, r, f1 = self.prf
        self.prf_label.setText(f"precision {p:.3f}    recall {r:.3f}    F1 {f1:.3f}")
        n_good, n_bad = len(good), len(defect)
        op = (fp / n_good, tp / n_bad) if n_good and n_bad else None
        if op != self._op:  # the marker moves only when a count changes
            self._op = op
            self.op_point.setData(*(([op[0]], [op[1]]) if op else ([], [])))
        au = "—" if math.isnan(self.auroc) else f"{self.auroc:.4f}"
        self.summary_label.setText(f"AUROC {au}  ·  F1 {f1:.3f}  ·  {n_good:,} good / {n_bad:,} defect")

    # ------------------------------------------------------------------ proposals
    def propose_best_f1(self) -> None:
        """Emit the F1-optimal threshold, converted to the app's strict NG rule."""
        t, f1, _, _ = metrics.f1_optimal_threshold(self._scores, self._labels)
        if math.isnan(t):
            return
        # f1_optimal_threshold counts score >= t as NG; the app uses score > t.
        self.threshold_proposed.emit(float(np.nextafter(t, -np.inf)), f"best F1 ({f1:.3f})")

    def propose_frr(self) -> None:
        """Emit the lowest threshold whose false-reject rate on good images is within the box."""
        pct = float(self.frr_spin.value())
        t = metrics.threshold_for_false_reject_rate(self._scores, self._labels, pct / 100.0)
        if not math.isfinite(t):
            return
        self.threshold_proposed.emit(t, f"false-reject rate ≤ {pct:g} %")
