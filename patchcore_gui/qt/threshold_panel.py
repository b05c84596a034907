"""Image threshold controls: score histogram with a draggable line, slider, number box, counts.

``threshold_edited`` follows every movement (verdicts update live); ``threshold_committed``
fires once the user settles (slider or line released, number entered, or a short pause
after keyboard steps), which is when a change is written to the run's threshold log.

The histogram shows this batch's scores and the model's held-out good scores (second
colour), each as a share of its images so the two shapes compare. When the scores
span more than a decade the score axis becomes logarithmic (PatchCore defect scores
are often many times the good ones); the slider then moves in log steps too.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import style

SLIDER_STEPS = 1000
BINS = 60
#: Keyboard steps on the slider / number boxes are committed after this pause (ms).
COMMIT_PAUSE_MS = 800


class ScoreScale:
    """Maps scores to view coordinates: identity, or log10 when the range is wide."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0, log: bool = False) -> None:
        self.log = log and lo > 0
        self.lo, self.hi = lo, hi

    @classmethod
    def for_values(cls, values: np.ndarray) -> ScoreScale:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls(0.0, 1.0)
        lo, hi = float(v.min()), float(v.max())
        if hi <= lo:
            lo, hi = lo - abs(lo) * 0.1 - 0.5, hi + abs(hi) * 0.1 + 0.5
        if lo > 0 and hi / lo > 10:
            return cls(lo / 1.15, hi * 1.15, log=True)
        pad = 0.06 * (hi - lo)
        return cls(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)

    def to_view(self, v: np.ndarray | float) -> np.ndarray | float:
        return np.log10(np.maximum(v, 1e-12)) if self.log else v

    def from_view(self, x: float) -> float:
        return float(10.0 ** x) if self.log else float(x)

    def to_slider(self, v: float) -> int:
        a, b = self.to_view(self.lo), self.to_view(self.hi)
        f = (self.to_view(v) - a) / (b - a) if b > a else 0.0
        return int(round(min(1.0, max(0.0, float(f))) * SLIDER_STEPS))

    def from_slider(self, k: int) -> float:
        a, b = self.to_view(self.lo), self.to_view(self.hi)
        return self.from_view(float(a + (b - a) * k / SLIDER_STEPS))


def log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Readable ticks for a log axis from ``lo`` to ``hi``: 1-2-5 steps, or decades if crowded."""
    if not (lo > 0 and hi > lo):
        return []
    out: list[tuple[float, str]] = []
    for mults in ((1, 2, 5), (1, 3), (1,)):
        out = []
        for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in mults:
                v = m * 10.0**k
                if lo <= v <= hi:
                    out.append((math.log10(v), f"{v:g}"))
        if len(out) <= 7:
            break
    return out


def _share_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    return 100.0 * counts / max(1, len(values))


class ThresholdPanel(QWidget):
    """Shows the threshold; emits ``threshold_edited`` when the user moves it."""

    threshold_edited = Signal(float)
    pixel_threshold_edited = Signal(float)
    #: the user settled on the image threshold (log it).
    threshold_committed = Signal()
    #: the user settled on the pixel threshold (log it).
    pixel_threshold_committed = Signal()
    reset_requested = Signal()
    save_requested = Signal()
    log_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = ScoreScale()
        self._threshold = math.nan
        self._batch = np.empty(0)
        self._calibration = np.empty(0)
        self._pending = {"image": False, "pixel": False}
        self.commit_timer = QTimer(self, singleShot=True, interval=COMMIT_PAUSE_MS)
        self.commit_timer.timeout.connect(self.commit_pending)
        self._build()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        title = QLabel("Image threshold")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        lay.addWidget(self._build_plot(), 1)
        self._build_controls(lay)
        self.set_enabled(False)

    def _build_plot(self) -> pg.PlotWidget:
        """The histogram of this batch and the calibration scores, with the draggable line."""
        self.plot = pg.PlotWidget()
        self.plot.setBackground(style.BASE_BG)
        self.plot.setMinimumHeight(150)
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "% of images")
        self.plot.setLabel("bottom", "raw score")
        # No grid: translucent grid lines cost ~10 ms per repaint (software raster),
        # which would double the cost of a threshold move.
        self.plot.getPlotItem().setMouseEnabled(y=False)
        self.legend = self.plot.addLegend(offset=(-8, 6), labelTextSize="8pt")
        self.batch_curve = pg.PlotDataItem(
            stepMode="center", fillLevel=0, fillOutline=True,
            brush=pg.mkBrush(*_rgba(style.BATCH_COLOR, 110)), pen=pg.mkPen(style.BATCH_COLOR, width=1.2),
            name="this batch",
        )
        self.cal_curve = pg.PlotDataItem(
            stepMode="center", fillLevel=0,
            brush=pg.mkBrush(*_rgba(style.CALIBRATION_COLOR, 60)), pen=pg.mkPen(style.CALIBRATION_COLOR, width=1.6),
            name="held-out good (model)",
        )
        self.plot.addItem(self.batch_curve)  # legend order: batch, then calibration
        self.plot.addItem(self.cal_curve)
        self.cal_curve.setZValue(2)  # the small calibration outline stays visible
        self.line = pg.InfiniteLine(
            angle=90, movable=True, pen=pg.mkPen(style.THRESHOLD_COLOR, width=2.5),
            hoverPen=pg.mkPen(style.THRESHOLD_COLOR, width=4),
        )
        self.line.setZValue(10)
        self.line.setVisible(False)
        self.plot.addItem(self.line)
        self.line.sigPositionChanged.connect(self._on_line)
        self.line.sigPositionChangeFinished.connect(lambda _l: self.commit_pending())
        self.legend.setVisible(False)
        self.empty_text = pg.TextItem("Scores appear here during a run", color=style.MUTED_TEXT, anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text, ignoreBounds=True)
        self.empty_text.setPos(0.5, 50)
        self.plot.setYRange(0, 100, padding=0)
        return self.plot

    def _build_controls(self, lay: QVBoxLayout) -> None:
        """Slider and number box, counts, origin line, pixel threshold, buttons."""
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("Image threshold: NG when score > threshold")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(-1e12, 1e12)
        self.spin.setDecimals(3)
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(96)
        self.spin.setToolTip("Image threshold in raw score units (NG when score > threshold)")
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        lay.addLayout(row)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(self.commit_pending)
        self.spin.valueChanged.connect(self._on_spin)

        counts = QGridLayout()
        counts.setHorizontalSpacing(14)
        self.ok_label = QLabel("OK 0")
        self.ng_label = QLabel("NG 0")
        self.err_label = QLabel("error 0")
        for col, (lab, color) in enumerate(
            ((self.ok_label, style.OK_COLOR), (self.ng_label, style.NG_COLOR), (self.err_label, style.ERROR_COLOR))
        ):
            lab.setObjectName("bigCount")
            lab.setStyleSheet(f"color: {color.name()};")
            counts.addWidget(lab, 0, col)
        counts.setColumnStretch(3, 1)
        lay.addLayout(counts)
        self.origin_label = QLabel("")
        self.origin_label.setObjectName("muted")
        self.origin_label.setWordWrap(True)
        lay.addWidget(self.origin_label)
        # A new folder starts from the model's threshold; carrying this one over is a choice.
        self.keep_check = QCheckBox("Keep this threshold for the next folder")
        self.keep_check.setToolTip("Unchecked, opening another folder goes back to the model's threshold")
        lay.addWidget(self.keep_check)

        prow = QHBoxLayout()
        plab = QLabel("Pixel threshold")
        plab.setToolTip("Anomaly-map level outlined as the defect region in the image")
        self.pixel_spin = QDoubleSpinBox()
        self.pixel_spin.setRange(0, 1e12)
        self.pixel_spin.setDecimals(3)
        self.pixel_spin.setKeyboardTracking(False)
        self.pixel_spin.setToolTip(plab.toolTip())
        self.pixel_spin.valueChanged.connect(self._on_pixel_spin)
        prow.addWidget(plab)
        prow.addWidget(self.pixel_spin, 1)
        lay.addLayout(prow)

        brow = QHBoxLayout()
        self.reset_button = QPushButton("Model value")
        self.reset_button.setToolTip("Back to the thresholds stored in the model file")
        self.reset_button.clicked.connect(self.reset_requested)
        self.save_button = QPushButton(style.make_icon("save"), "Save threshold to model…")
        self.save_button.setToolTip("Write a new model file carrying these thresholds")
        self.save_button.clicked.connect(self.save_requested)
        self.log_button = QPushButton("Log")
        self.log_button.setToolTip("Every threshold change made in this run, with time and note (Ctrl+L)")
        self.log_button.clicked.connect(self.log_requested)
        brow.addWidget(self.reset_button)
        brow.addWidget(self.save_button, 1)
        brow.addWidget(self.log_button)
        lay.addLayout(brow)

    # ------------------------------------------------------------------ public API
    @property
    def scale(self) -> ScoreScale:
        return self._scale

    def set_enabled(self, enabled: bool) -> None:
        """Controls are live once a model is open."""
        for w in (self.slider, self.spin, self.pixel_spin, self.reset_button, self.save_button):
            w.setEnabled(enabled)
        self.line.setVisible(enabled)

    def set_scores(self, batch: np.ndarray, calibration: np.ndarray) -> None:
        """New histogram data (this batch's finite scores and the model's good scores)."""
        self._batch = np.asarray(batch, dtype=np.float64)
        self._batch = self._batch[np.isfinite(self._batch)]
        self._calibration = np.asarray(calibration, dtype=np.float64)
        self._calibration = self._calibration[np.isfinite(self._calibration)]
        extra = [self._threshold] if math.isfinite(self._threshold) else []
        scale = ScoreScale.for_values(np.concatenate([self._batch, self._calibration, extra]))
        if (scale.log, scale.lo, scale.hi) != (self._scale.log, self._scale.lo, self._scale.hi):
            self._scale = scale
            axis = self.plot.getAxis("bottom")
            axis.setTicks([log_ticks(scale.lo, scale.hi), []] if scale.log else None)
            self.plot.setLabel("bottom", "raw score (log scale)" if scale.log else "raw score")
            decimals = max(0, min(6, 3 - int(math.floor(math.log10(max(abs(scale.hi), 1e-9))))))
            for spin in (self.spin, self.pixel_spin):
                # setDecimals rounds the value and would emit it as a user edit.
                spin.blockSignals(True)
                spin.setDecimals(decimals)
                spin.setSingleStep(10.0 ** (-decimals) * 10 if decimals else max(1.0, scale.hi / 200))
                spin.blockSignals(False)
        a, b = self._scale.to_view(self._scale.lo), self._scale.to_view(self._scale.hi)
        edges_view = np.linspace(a, b, BINS + 1)
        edges = np.array([self._scale.from_view(x) for x in edges_view])
        for curve, values in ((self.batch_curve, self._batch), (self.cal_curve, self._calibration)):
            if values.size:
                curve.setData(edges_view, _share_histogram(values, edges))
            else:
                curve.setData([], [])
        # The legend is built once: re-creating its labels costs ~30 ms of layout.
        has_data = bool(self._batch.size or self._calibration.size)
        self.legend.setVisible(has_data)
        self.empty_text.setVisible(not has_data)
        if has_data:
            self.plot.enableAutoRange(axis="y")
        self.plot.setToolTip(
            f"{self._batch.size:,} scored images in this batch; "
            f"{self._calibration.size:,} held-out good images from the model's calibration"
        )
        self.plot.setXRange(a, b, padding=0)
        self._place_widgets()

    def set_threshold(self, value: float) -> None:
        """Show ``value`` on the line, slider and number box without re-emitting it."""
        self._threshold = float(value)
        if math.isfinite(value) and not self._scale.lo <= value <= self._scale.hi:
            self.set_scores(self._batch, self._calibration)  # widen the range to include it
        self._place_widgets()

    def set_pixel_threshold(self, value: float) -> None:
        self.pixel_spin.blockSignals(True)
        self.pixel_spin.setValue(value if math.isfinite(value) else 0.0)
        self.pixel_spin.blockSignals(False)

    def set_counts(self, ok: int, ng: int, errors: int) -> None:
        for label, text in ((self.ok_label, f"OK {ok:,}"), (self.ng_label, f"NG {ng:,}"),
                            (self.err_label, f"error {errors:,}")):
            if label.text() != text:
                label.setText(text)

    def set_origin(self, text: str) -> None:
        """One line on where the current threshold comes from."""
        self.origin_label.setText(text)

    def set_log_count(self, n: int) -> None:
        """How many threshold changes the run file holds (shown on the Log button)."""
        self.log_button.setText(f"Log ({n})" if n else "Log")

    def commit_pending(self) -> None:
        """Emit the commit signals for what was edited since the last commit."""
        self.commit_timer.stop()
        image, pixel = self._pending["image"], self._pending["pixel"]
        self._pending = {"image": False, "pixel": False}
        if image:
            self.threshold_committed.emit()
        if pixel:
            self.pixel_threshold_committed.emit()

    # ------------------------------------------------------------------ internals
    def _place_widgets(self) -> None:
        v = self._threshold
        if not math.isfinite(v):
            return
        for w in (self.line, self.slider, self.spin):
            w.blockSignals(True)
        self.line.setValue(float(self._scale.to_view(v)))
        self.slider.setValue(self._scale.to_slider(v))
        self.spin.setValue(v)
        for w in (self.line, self.slider, self.spin):
            w.blockSignals(False)

    def _edited(self, kind: str, dragging: bool) -> None:
        """A change to commit: at once on release/enter, after a pause for key steps."""
        self._pending[kind] = True
        if dragging:
            self.commit_timer.stop()  # committed on release
        else:
            self.commit_timer.start()

    def _on_line(self) -> None:
        self.threshold_edited.emit(self._scale.from_view(float(self.line.value())))
        self._edited("image", bool(getattr(self.line, "moving", False)))

    def _on_slider(self, k: int) -> None:
        self.threshold_edited.emit(self._scale.from_slider(k))
        self._edited("image", self.slider.isSliderDown())

    def _on_spin(self, value: float) -> None:
        self.threshold_edited.emit(float(value))
        self._edited("image", False)

    def _on_pixel_spin(self, value: float) -> None:
        self.pixel_threshold_edited.emit(float(value))
        self._edited("pixel", False)


def _rgba(color: object, alpha: int) -> tuple[int, int, int, int]:
    return color.red(), color.green(), color.blue(), alpha  # type: ignore[attr-defined]
