"""Number fields for thresholds that refuse values no model can use.

A threshold is a squared distance: a finite number >= 0 (``core/thresholds.check_thresholds``).
Each field also has a sane maximum (``SANE_FACTOR`` x the largest score, calibration
score or threshold the panel knows) and, for the two image thresholds, a bound set by
the other: the review band's start may not lie above the image threshold.

Qt's own ``QDoubleSpinBox`` checks each keystroke against its range, so typing
"1000000000" into a field whose maximum is 500 leaves "100" in it, and Enter takes that.
Here a complete number outside the field's limits is "intermediate" (kept while typed)
and is never taken: on Enter or focus-out the field goes back to its value and emits
``refused`` with the reason. NaN and infinity are not numbers the field accepts at all.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

#: A threshold field accepts up to this many times the largest score it knows of.
SANE_FACTOR = 100.0
#: The maximum before any score or threshold is known.
DEFAULT_MAX = 1e6


class ThresholdField(QDoubleSpinBox):
    """A ``QDoubleSpinBox`` that takes only finite values within [lower, upper] and says why not."""

    #: a typed value was not taken (one line for the user).
    refused = Signal(str)

    def __init__(self, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.lower = 0.0
        self.upper = DEFAULT_MAX
        #: Why the other threshold bounds this field ("" when it does not).
        self._lower_why = self._upper_why = ""
        self.setRange(0.0, DEFAULT_MAX)
        self.setKeyboardTracking(False)

    def set_limits(self, lower: float = 0.0, upper: float = DEFAULT_MAX, lower_why: str = "",
                   upper_why: str = "") -> None:
        """Accept values in [``lower``, ``upper``] (the ``*_why`` words name a bound set by another
        threshold). The shown value stays as it is; no signal is emitted."""
        lower = max(0.0, float(lower)) if math.isfinite(lower) else 0.0
        upper = float(upper) if math.isfinite(upper) and upper >= lower else max(lower, DEFAULT_MAX)
        if (lower, upper, lower_why, upper_why) == (self.lower, self.upper, self._lower_why, self._upper_why):
            return
        self.lower, self.upper, self._lower_why, self._upper_why = lower, upper, lower_why, upper_why
        value = self.value()
        self.blockSignals(True)
        # Qt's range is what the arrows step within; widened to the shown value so that
        # setting limits never changes it behind the user's back.
        self.setRange(min(self._floor(lower), value), max(self._ceil(upper), value))
        self.blockSignals(False)

    def reason(self, value: float) -> str:
        """Why ``value`` is refused ("" when it is accepted)."""
        if not math.isfinite(value):
            return f"{self.what} must be a finite number"
        if value < 0:
            return f"{self.what} must be 0 or more (scores are squared distances)"
        if value < self.lower:
            return f"{self.what} must be at least {self.lower:.6g}" + (f" ({self._lower_why})" if self._lower_why else "")
        if value > self.upper:
            return f"{self.what} must be at most {self.upper:.6g}" + (
                f" ({self._upper_why})" if self._upper_why else " (far above every score seen)")
        return ""

    # ------------------------------------------------------------------ Qt overrides
    def validate(self, text: str, pos: int) -> object:  # Qt override
        value = self._parse(text)
        if value is None:  # partial input ("", "1e", ".") and words: Qt's own rules
            return super().validate(text, pos)
        if not math.isfinite(value):
            return QValidator.State.Invalid, text, pos
        if self.reason(value):
            # Kept while typing (it may be the start of something valid), never taken.
            return QValidator.State.Intermediate, text, pos
        return super().validate(text, pos)

    def fixup(self, text: str) -> str:  # Qt override: called when a typed text is not taken
        value = self._parse(text)
        why = self.reason(value) if value is not None else f"{self.what} must be a number"
        if why:
            self.refused.emit(f"{text.strip()} refused: {why}")
        return text

    # ------------------------------------------------------------------ internals
    def _parse(self, text: str) -> float | None:
        body = text.strip()
        if self.prefix():
            body = body.removeprefix(self.prefix().strip())
        if self.suffix():
            body = body.removesuffix(self.suffix().strip())
        body = body.strip().replace(self.locale().groupSeparator(), "")
        try:
            return float(body.replace(self.locale().decimalPoint(), "."))
        except ValueError:
            return None

    def _floor(self, v: float) -> float:
        step = 10.0 ** -self.decimals()
        return math.floor(v / step) * step

    def _ceil(self, v: float) -> float:
        step = 10.0 ** -self.decimals()
        return math.ceil(v / step) * step
