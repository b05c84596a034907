"""The drift banner: a strip above the results that says when a batch no longer looks like the
good images the model was calibrated on (``core/drift.py``), with the figure behind it.

``DriftBanner`` is a plain widget with one setter. ``DriftMonitor`` follows the document:
during a run it checks the scores that have arrived at most once a second (and only when
new images came in), so the banner appears live once ``MIN_RUN_IMAGES`` images are
scored; when the run ends, or a run file is opened, it checks every score. A model that
cannot be checked (no calibration scores, or an old model's few held-out ones) is said
once per model in the status bar instead of a banner.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from patchcore_gui.core.drift import (
    ADVICE,
    FEW_CALIBRATION,
    NO_CALIBRATION,
    DriftResult,
    check_drift,
)

from .document import InspectionDocument

#: During a run the check runs at most this often (ms), and only when new images arrived.
CHECK_MS = 1000
#: A live check reads at most this many scores, evenly spread over the arrival order: the
#: whole of a 1M-image run costs ~50 ms per check on the GUI thread (Xeon, 2 cores); 100k
#: give the medians to far inside the tolerance. The check after the run reads every score.
LIVE_SAMPLE = 100_000

BANNER_STYLE = """
QFrame#driftBanner { background: rgba(212, 167, 44, 40); border: 1px solid #d4a72c; border-radius: 6px; }
QLabel#driftTitle { color: #f2c14e; font-weight: 700; font-size: 13px; }
QLabel#driftText { color: #f0e6cc; }
QLabel#driftAdvice { color: #d9cfb5; font-size: 11px; }
QToolButton#driftHide { border: none; color: #d9cfb5; padding: 0 4px; }
"""


class DriftBanner(QWidget):
    """Shown while the batch has drifted: the figure, what to check, a Hide button.

    The outer widget carries the margins, so a hidden banner takes no room at all.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame = QFrame()
        self.frame.setObjectName("driftBanner")
        self.setStyleSheet(BANNER_STYLE)
        self.title = QLabel("Score drift")
        self.title.setObjectName("driftTitle")
        self.text = QLabel("")
        self.text.setObjectName("driftText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.advice = QLabel(f"{ADVICE[:1].upper()}{ADVICE[1:]}. Verdicts at the model's threshold may not "
                             "hold for this batch.")
        self.advice.setObjectName("driftAdvice")
        self.advice.setWordWrap(True)
        self.hide_button = QToolButton()
        self.hide_button.setObjectName("driftHide")
        self.hide_button.setText("Hide")
        self.hide_button.setToolTip("Hide the banner until the next run")
        self.hide_button.clicked.connect(self.dismiss)
        words = QVBoxLayout()
        words.setSpacing(2)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.hide_button)
        words.addLayout(head)
        words.addWidget(self.text)
        words.addWidget(self.advice)
        lay = QHBoxLayout(self.frame)
        lay.setContentsMargins(12, 8, 8, 8)
        lay.addLayout(words, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 0)
        outer.addWidget(self.frame)
        #: The result on show (None: nothing checked yet).
        self.result: DriftResult | None = None
        self.dismissed = False
        self.setVisible(False)

    def set_result(self, result: DriftResult | None, live: bool = False) -> None:
        """Show ``result`` when the batch has drifted; hide the banner otherwise."""
        self.result = result
        if result is None or not result.shifted:
            self.setVisible(False)
            return
        side = "higher" if result.direction == "higher" else "lower"
        self.title.setText(f"Score drift: this batch scores {side} than the training images"
                           + (" (live, the run goes on)" if live else ""))
        self.text.setText(result.figure()[:1].upper() + result.figure()[1:] + ".")
        self.setVisible(not self.dismissed)

    def dismiss(self) -> None:
        """Hide until the next run or opened run file."""
        self.dismissed = True
        self.setVisible(False)

    def reset(self) -> None:
        """A new run or run file: a dismissed banner may show again."""
        self.dismissed = False
        self.set_result(None)


class DriftMonitor(QObject):
    """Keeps ``banner`` showing the drift check of ``doc``'s results."""

    def __init__(self, doc: InspectionDocument, banner: DriftBanner) -> None:
        super().__init__(doc)
        self.doc, self.banner = doc, banner
        self.timer = QTimer(self, interval=CHECK_MS)
        self.timer.timeout.connect(self._tick)
        self._checked_count = -1
        self._told_models: set[int] = set()
        #: Seconds the last check took (a check over 1M scores must stay off the frame budget).
        self.last_check_s = 0.0
        #: The calibration scores in use (read once per model / run file, not on every check).
        self._cal: np.ndarray | None = None
        doc.results_changed.connect(self._new_results)
        doc.model_changed.connect(self._new_model)
        doc.run_file_changed.connect(self._forget_calibration)
        doc.running_changed.connect(self._running)

    def _forget_calibration(self) -> None:
        self._cal = None

    def _new_model(self) -> None:
        self._cal = None
        self.check()

    def _new_results(self) -> None:
        self.banner.reset()
        self._checked_count = -1
        self._cal = None
        self.check()

    def _running(self, running: bool) -> None:
        if running:
            self.timer.start()
        else:
            self.timer.stop()
            self.check()

    def _tick(self) -> None:
        st = self.doc.results
        if st is not None and st.count != self._checked_count:
            self.check()

    def calibration_scores(self) -> np.ndarray:
        """The calibration of the model that scored the run (the run file records it), else the
        open model's: a run opened beside another model is checked against its own."""
        if self._cal is None:
            meta = self.doc.session.meta() if self.doc.session.store is not None else {}
            cal = (meta.get("model_metadata") or {}).get("calibration", {}).get("scores")
            if cal is None and self.doc.model is not None:
                cal = self.doc.model.calibration_scores
            self._cal = np.asarray(cal if cal is not None else [], dtype=np.float64)
        return self._cal

    def check(self) -> DriftResult | None:
        """Check the scores that have arrived; show the result; return it (None without results)."""
        st = self.doc.results
        if st is None or st.count == 0:
            self.banner.set_result(None)
            return None
        t0 = time.perf_counter()
        scores, labels = st.scored()
        if self.doc.running and len(scores) > LIVE_SAMPLE:
            step = -(-len(scores) // LIVE_SAMPLE)
            scores, labels = scores[::step], labels[::step]
        result = check_drift(scores, self.calibration_scores(), labels)
        self.last_check_s = time.perf_counter() - t0
        self._checked_count = st.count
        self.banner.set_result(result, live=self.doc.running)
        if result.status in (FEW_CALIBRATION, NO_CALIBRATION):
            key = id(self.doc.model)
            if key not in self._told_models:  # said once per model, not on every check
                self._told_models.add(key)
                self.doc.show_status(result.figure()[:1].upper() + result.figure()[1:] + ".", 15000)
        return result
