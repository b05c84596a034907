"""Image threshold controls: score histogram with a draggable line, slider, number box, counts.

``threshold_edited`` follows every movement (verdicts update live); ``threshold_committed``
fires once the user settles (slider or line released, number entered, or a short pause
after keyboard steps), which is when a change is written to the run's threshold log.

The histogram shows this batch's scores and the model's calibration scores of good images (second
colour), each as a share of its images so the two shapes compare. When the scores
span more than a decade the score axis becomes logarithmic (PatchCore defect scores
are often many times the good ones); the slider then moves in log steps too.

The review band (``review_band.py``: a check box and a field, off by default) adds a
second draggable line at the band's start and shades the band up to the threshold;
``review_edited`` / ``review_committed`` follow it as the threshold's signals do. The
band's start never lies above the threshold: each line stops at the other. Every
number field refuses negative, non-finite and absurdly large values
(``threshold_fields.py``) and says why in ``refused``; the axis follows only values a
field accepted.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import style
from .review_band import ReviewBand
from .score_scale import SLIDER_STEPS, ScoreScale, log_ticks, share_histogram
from .threshold_fields import DEFAULT_MAX, SANE_FACTOR, ThresholdField

BINS = 60
#: Keyboard steps on the slider / number boxes are committed after this pause (ms).
COMMIT_PAUSE_MS = 800


class ThresholdPanel(QWidget):
    """Shows the threshold; emits ``threshold_edited`` when the user moves it."""

    threshold_edited = Signal(float)
    pixel_threshold_edited = Signal(float)
    #: the user settled on the image threshold (log it).
    threshold_committed = Signal()
    #: the user settled on the pixel threshold (log it).
    pixel_threshold_committed = Signal()
    #: the review band's start moved (NaN: the band was switched off).
    review_edited = Signal(float)
    #: the user settled on the review band's start (log it).
    review_committed = Signal()
    #: a typed value was refused (one line for the status bar).
    refused = Signal(str)
    reset_requested = Signal()
    save_requested = Signal()
    log_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = ScoreScale()
        self._threshold = math.nan
        self._batch = np.empty(0)
        self._calibration = np.empty(0)
        #: The largest batch and calibration score (set_scores): a max over 1,000,000 scores
        #: on every threshold move cost 2 ms.
        self._known_max: list[float] = []
        self._review_from = math.nan
        self._pixel = math.nan
        self._enabled = False
        self._pending = {"image": False, "pixel": False, "review": False}
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
            name="good, calibration (model)",
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
        self.band = ReviewBand(self.plot)
        self.band.line.sigPositionChanged.connect(self._on_review_line)
        self.band.line.sigPositionChangeFinished.connect(lambda _l: self.commit_pending())
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
        self.spin = ThresholdField("image threshold")
        self.spin.setDecimals(3)
        self.spin.setMinimumWidth(96)
        self.spin.setToolTip("Image threshold in raw score units (NG when score > threshold)")
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        lay.addLayout(row)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(self.commit_pending)
        self.spin.valueChanged.connect(self._on_spin)
        lay.addLayout(self.band.build_row())
        self.review_check, self.review_spin = self.band.check, self.band.spin
        self.review_check.toggled.connect(self._on_review_check)
        self.review_spin.valueChanged.connect(self._on_review_spin)
        for field in (self.spin, self.review_spin):
            field.refused.connect(self.refused)

        counts = QGridLayout()
        counts.setHorizontalSpacing(14)
        self.ok_label = QLabel("OK 0")
        self.review_label = QLabel("REVIEW 0")
        self.ng_label = QLabel("NG 0")
        self.err_label = QLabel("error 0")
        for col, (lab, color) in enumerate(
            ((self.ok_label, style.OK_COLOR), (self.review_label, style.REVIEW_COLOR), (self.ng_label, style.NG_COLOR),
             (self.err_label, style.ERROR_COLOR))
        ):
            lab.setObjectName("bigCount")
            lab.setStyleSheet(f"color: {color.name()};")
            counts.addWidget(lab, 0, col)
        self.review_label.setVisible(False)
        counts.setColumnStretch(4, 1)
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
        self.pixel_spin = ThresholdField("pixel threshold")
        self.pixel_spin.setDecimals(3)
        self.pixel_spin.setToolTip(plab.toolTip())
        self.pixel_spin.valueChanged.connect(self._on_pixel_spin)
        self.pixel_spin.refused.connect(self.refused)
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
        for w in (self.slider, self.spin, self.pixel_spin, self.reset_button, self.save_button, self.review_check):
            w.setEnabled(enabled)
        self._enabled = enabled
        self.review_spin.setEnabled(enabled and self.review_check.isChecked())
        self.line.setVisible(enabled)
        self.band.show(enabled and math.isfinite(self._review_from))

    def set_scores(self, batch: np.ndarray, calibration: np.ndarray) -> None:
        """New histogram data (this batch's finite scores and the model's good scores)."""
        self._batch = np.asarray(batch, dtype=np.float64)
        self._batch = self._batch[np.isfinite(self._batch)]
        self._calibration = np.asarray(calibration, dtype=np.float64)
        self._calibration = self._calibration[np.isfinite(self._calibration)]
        self._known_max = [float(v.max()) for v in (self._batch, self._calibration) if v.size]
        extra = [self._threshold] if math.isfinite(self._threshold) else []
        scale = ScoreScale.for_values(np.concatenate([self._batch, self._calibration, extra]))
        if (scale.log, scale.lo, scale.hi) != (self._scale.log, self._scale.lo, self._scale.hi):
            self._scale = scale
            axis = self.plot.getAxis("bottom")
            axis.setTicks([log_ticks(scale.lo, scale.hi), []] if scale.log else None)
            self.plot.setLabel("bottom", "raw score (log scale)" if scale.log else "raw score")
            decimals = max(0, min(6, 3 - int(math.floor(math.log10(max(abs(scale.hi), 1e-9))))))
            for spin in (self.spin, self.pixel_spin, self.review_spin):
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
                curve.setData(edges_view, share_histogram(values, edges))
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
            f"{self._calibration.size:,} good images from the model's calibration (each scored "
            "without its own bank rows; older models: a held-out slice)"
        )
        self.plot.setXRange(a, b, padding=0)
        self._place_widgets()

    def set_threshold(self, value: float) -> None:
        """Show ``value`` on the line, slider and number box without re-emitting it."""
        self._threshold = float(value)
        if math.isfinite(value) and not self._scale.lo <= value <= self._scale.hi:
            self.set_scores(self._batch, self._calibration)  # widen the range to include it
        self._place_widgets()

    def set_review_from(self, value: float) -> None:
        """Show the review band's start (NaN: band off) without re-emitting it."""
        self._review_from = float(value)
        on = math.isfinite(self._review_from)
        if on:
            self.band.last = self._review_from
        self.review_check.blockSignals(True)
        self.review_check.setChecked(on)
        self.review_check.blockSignals(False)
        self.review_spin.setEnabled(on)  # the check box's own signal was blocked
        self.review_label.setVisible(on)
        if on and not self._scale.lo <= value <= self._scale.hi:
            self.set_scores(self._batch, self._calibration)
        self._place_widgets()

    def set_pixel_threshold(self, value: float) -> None:
        self._pixel = float(value)
        self._update_limits()
        self.pixel_spin.blockSignals(True)
        self.pixel_spin.setValue(value if math.isfinite(value) else 0.0)
        self.pixel_spin.blockSignals(False)

    def set_counts(self, ok: int, ng: int, errors: int, review: int = 0) -> None:
        for label, text in ((self.ok_label, f"OK {ok:,}"), (self.ng_label, f"NG {ng:,}"),
                            (self.err_label, f"error {errors:,}"), (self.review_label, f"REVIEW {review:,}")):
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
        image, pixel, review = self._pending["image"], self._pending["pixel"], self._pending["review"]
        self._pending = {"image": False, "pixel": False, "review": False}
        if image:
            self.threshold_committed.emit()
        if review:
            self.review_committed.emit()
        if pixel:
            self.pixel_threshold_committed.emit()

    # ------------------------------------------------------------------ internals
    def _place_widgets(self) -> None:
        v, rf = self._threshold, self._review_from
        self._update_limits()
        view = self._scale.to_view
        # Each line stops at the other: the band's start never passes the threshold.
        self.line.setBounds((float(view(rf)) if math.isfinite(rf) else None, None))
        self.band.place(rf, v, view, self._enabled)
        if not math.isfinite(v):
            return
        for w in (self.line, self.slider, self.spin):
            w.blockSignals(True)
        self.line.setValue(float(view(v)))
        self.slider.setValue(self._scale.to_slider(v))
        self.spin.setValue(v)
        for w in (self.line, self.slider, self.spin):
            w.blockSignals(False)

    def _update_limits(self) -> None:
        """What each field accepts: 0 .. SANE_FACTOR x the largest score seen (batch or
        calibration; the thresholds themselves only while no score is known, so repeated
        typing cannot walk the limit up), and the band's start at most the threshold."""
        known = self._known_max or [x for x in (self._threshold, self._pixel, self._review_from) if math.isfinite(x)]
        top = SANE_FACTOR * max(known) if known and max(known) > 0 else DEFAULT_MAX
        rf, t = self._review_from, self._threshold
        self.spin.set_limits(rf if math.isfinite(rf) else 0.0, top,
                             lower_why="the review band starts there" if math.isfinite(rf) else "")
        self.review_spin.set_limits(0.0, t if math.isfinite(t) else top,
                                    upper_why="the image threshold" if math.isfinite(t) else "")
        self.pixel_spin.set_limits(0.0, top)

    def _edited(self, kind: str, dragging: bool) -> None:
        """A change to commit: at once on release/enter, after a pause for key steps."""
        self._pending[kind] = True
        if dragging:
            self.commit_timer.stop()  # committed on release
        else:
            self.commit_timer.start()

    def _image_value(self, value: float) -> float:
        """``value`` moved up to the band's start when it would pass below it."""
        rf = self._review_from
        return max(float(value), rf) if math.isfinite(rf) else float(value)

    def _on_line(self) -> None:
        self.threshold_edited.emit(self._image_value(self._scale.from_view(float(self.line.value()))))
        self._edited("image", bool(getattr(self.line, "moving", False)))

    def _on_slider(self, k: int) -> None:
        value = self._image_value(self._scale.from_slider(k))
        self.threshold_edited.emit(value)
        if value != self._threshold:
            self._place_widgets()  # the slider stopped at the band's start
        self._edited("image", self.slider.isSliderDown())

    def _on_spin(self, value: float) -> None:
        self.threshold_edited.emit(self._image_value(value))
        self._edited("image", False)

    def _review_value(self, value: float) -> float:
        """``value`` within [0, threshold]."""
        t = self._threshold
        return min(max(float(value), 0.0), t) if math.isfinite(t) else max(float(value), 0.0)

    def _on_review_line(self) -> None:
        self.review_edited.emit(self._review_value(self._scale.from_view(float(self.band.line.value()))))
        self._edited("review", bool(getattr(self.band.line, "moving", False)))

    def _on_review_spin(self, value: float) -> None:
        if self.review_check.isChecked():
            self.review_edited.emit(self._review_value(value))
            self._edited("review", False)

    def _on_review_check(self, on: bool) -> None:
        """Band on at its last start (or a tenth of the axis below the threshold), or off."""
        value = self.band.default_start(self._threshold, self._scale) if on else math.nan
        if on and not math.isfinite(value):  # no threshold to put a band under
            self.review_check.blockSignals(True)
            self.review_check.setChecked(False)
            self.review_check.blockSignals(False)
            self.refused.emit("A review band needs an image threshold above it: set one first.")
            return
        self.review_edited.emit(value)
        self._pending["review"] = True
        self.commit_pending()

    def _on_pixel_spin(self, value: float) -> None:
        self.pixel_threshold_edited.emit(float(value))
        self._edited("pixel", False)


def _rgba(color: object, alpha: int) -> tuple[int, int, int, int]:
    return color.red(), color.green(), color.blue(), alpha  # type: ignore[attr-defined]
