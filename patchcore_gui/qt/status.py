"""Run progress in the status bar: done / total, images per second, ETA, device."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


def format_eta(seconds: float) -> str:
    """"0:07", "3:05", "1:02:03"; "—" when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def finish_message(cancelled: bool, done: int, total: int, elapsed: float, errors: int) -> str:
    """The status-bar line at the end of a run."""
    word = "Cancelled" if cancelled else "Done"
    tail = f", {errors} unreadable" if errors else ""
    return f"{word}: {done:,} of {total:,} images scored in {elapsed:.1f} s{tail}"


class RunStatus(QWidget):
    """Permanent status-bar widget for the run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setFormat("%v / %m")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.rate_label = QLabel("")
        self.eta_label = QLabel("")
        self.device_label = QLabel("")
        for w in (self.bar, self.rate_label, self.eta_label, self.device_label):
            lay.addWidget(w)
        self.bar.setVisible(False)
        self._already = 0

    def start(self, total: int, device: str, already: int = 0) -> None:
        """A run of ``total`` images begins (``already`` of them done before: a resume)."""
        self._already = already
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(already)
        self.bar.setVisible(True)
        self.rate_label.setText("starting…")
        self.eta_label.setText("")
        self.device_label.setText(f"device: {device}" if device else "")

    def busy(self, text: str) -> None:
        """An indeterminate bar (work of unknown length, e.g. preparing the demo)."""
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.rate_label.setText(text)
        self.eta_label.setText("")

    def progress(self, done: int, total: int, elapsed: float) -> None:
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)
        rate = (done - self._already) / elapsed if elapsed > 0 else math.nan
        self.rate_label.setText(f"{rate:.1f} img/s" if math.isfinite(rate) else "")
        eta = (total - done) / rate if rate and math.isfinite(rate) and rate > 0 else math.nan
        self.eta_label.setText(f"ETA {format_eta(eta)}")

    def finish(self, done: int, elapsed: float, device: str) -> None:
        """The run ended: ``done`` images in all (those of a resumed run's earlier sessions too)."""
        self.bar.setVisible(False)
        this_session = done - self._already  # the rate of what this session scored
        rate = this_session / elapsed if elapsed > 0 else math.nan
        self.rate_label.setText(f"{rate:.1f} img/s" if math.isfinite(rate) and this_session > 0 else "")
        self.eta_label.setText("")
        self.device_label.setText(f"device: {device}" if device else "")

    def clear(self) -> None:
        """Nothing running and nothing to report (another folder or run is shown)."""
        self.bar.setVisible(False)
        self._already = 0
        for label in (self.rate_label, self.eta_label, self.device_label):
            label.setText("")
